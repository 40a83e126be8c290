// A small line chart of messages per second on a <canvas>: the console draws it itself so it
// needs no chart library (nothing is loaded from elsewhere).

const POINTS = 120;

export class RateChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.sent = [];
    this.received = [];
    // Redraw at the new size (a phone turned, a window resized) instead of stretching pixels.
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  push(sent, received) {
    this.sent.push(sent);
    this.received.push(received);
    if (this.sent.length > POINTS) { this.sent.shift(); this.received.shift(); }
    this.draw();
  }

  draw() {
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 180;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const styles = getComputedStyle(document.documentElement);
    const pad = { left: 44, right: 8, top: 10, bottom: 18 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const max = niceMax(Math.max(1, ...this.sent, ...this.received));

    g.font = "11px system-ui, sans-serif";
    g.fillStyle = styles.getPropertyValue("--muted") || "#555";
    g.strokeStyle = styles.getPropertyValue("--line") || "#ddd";
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    // Five lines for a 5 × 10ⁿ top, four otherwise: every label a round number.
    const steps = String(max).startsWith("5") ? 5 : 4;
    for (let i = 0; i <= steps; i++) {
      const y = pad.top + plotH - (plotH * i) / steps;
      g.beginPath(); g.moveTo(pad.left, y); g.lineTo(width - pad.right, y); g.stroke();
      g.fillText(formatRate((max * i) / steps), pad.left - 6, y);
    }
    g.textAlign = "left";
    g.textBaseline = "alphabetic";
    g.fillText(`last ${POINTS} s`, pad.left, height - 4);

    const line = (values, color, dash) => {
      if (values.length < 2) return;
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.setLineDash(dash);
      g.beginPath();
      const offset = POINTS - values.length;
      values.forEach((v, i) => {
        const x = pad.left + (plotW * (offset + i)) / (POINTS - 1);
        const y = pad.top + plotH - (plotH * v) / max;
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
    };
    // Received is dashed and on top: with equal rates (one sender, one receiver) both show.
    line(this.sent, styles.getPropertyValue("--sent") || "#1f5fbf", []);
    line(this.received, styles.getPropertyValue("--received") || "#c2561a", [6, 4]);
    g.setLineDash([]);
  }
}

/** The smallest 1, 2 or 5 × 10ⁿ at or above `v`: round gridline labels. */
function niceMax(v) {
  const base = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 5, 10]) if (step * base >= v) return step * base;
  return 10 * base;
}

export function formatRate(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k`;
  return v >= 10 ? String(Math.round(v)) : String(Number(v.toFixed(2)));
}
