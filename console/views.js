// The console's tables and the collection browser. Every value from the server goes in as
// text (textContent), never as markup: items and user ids are whatever clients wrote.

const MAX_CHANGES = 200;
/** Fields rthub sets on every item: shown, but not sent back on an edit. */
const SYSTEM_FIELDS = ["id", "_created", "_changed", "_version"];

const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
};
const cell = (text, className = "") => el("td", { textContent: text ?? "", className });
const button = (text, label, onClick) => {
  const b = el("button", { type: "button", textContent: text, className: "secondary" });
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
};

/** The message of rthub's JSON errors (`{error: {code, message}}`), else the text. */
export function errorText(body) {
  if (body && typeof body === "object") return body.error?.message ?? body.message ?? JSON.stringify(body);
  return typeof body === "string" ? body.slice(0, 300) : "";
}

/** Previous / next buttons over `pageSize` rows; calls `onChange` when the page moves. */
export class Pager {
  constructor(container, onChange, pageSize = 25) {
    this.pageNo = 1;
    this.pageSize = pageSize;
    this.count = 0;
    this.prev = button("Previous", "Previous page", () => { this.pageNo -= 1; onChange(); });
    this.next = button("Next", "Next page", () => { this.pageNo += 1; onChange(); });
    this.label = el("span");
    container.append(this.prev, this.label, this.next);
  }

  update(count) {
    this.count = count;
    const pages = Math.max(1, Math.ceil(count / this.pageSize));
    if (this.pageNo > pages) this.pageNo = pages;
    this.label.textContent = `page ${this.pageNo} of ${pages}`;
    this.prev.disabled = this.pageNo <= 1;
    this.next.disabled = this.pageNo >= pages;
  }
}

export function renderConnections(body, connections) {
  body.replaceChildren(...connections.map((c) => {
    const row = el("tr", {}, cell(c.connectionId, "mono"), cell(c.protocol), cell(c.transport),
      cell(c.isServer ? "(server)" : c.userId ?? "(anonymous)"), cell(c.groups.join(", ")), cell(String(c.queuedBytes)));
    row.dataset.connectionId = c.connectionId;
    return row;
  }));
}

export function renderChannels(body, channels, showMembers, rates = new Map()) {
  body.replaceChildren(...channels.map((c) => {
    const rate = rates.get(c.group);
    const row = el("tr", {}, cell(c.channel), cell(String(c.members)),
      cell(rate === undefined ? "–" : rate.toFixed(1)),
      el("td", {}, button("Members", `Members of ${c.channel}`, () => showMembers(c.channel))));
    row.dataset.channel = c.channel;
    return row;
  }));
}

export function renderMembers(target, channel, page) {
  const list = el("ul");
  for (const m of page.members) {
    const who = m.userId ?? "(anonymous)";
    list.append(el("li", { textContent: `${who} — ${m.protocol}${m.readOnly ? ", read-only" : ""} — ${m.connectionId ?? ""}` }));
  }
  target.replaceChildren(el("h3", { textContent: `Members of ${channel} (${page.count})` }), list);
}

export function appendChange(list, change) {
  const op = String(change.operation ?? "");
  const item = el("li", {},
    el("span", { className: `op ${op}`, textContent: op }), " ",
    `${change.collection}${change.id ? `/${change.id}` : ""}`,
    change.seq === undefined ? "" : ` #${change.seq}`, " ",
    JSON.stringify(change.data ?? null));
  item.dataset.collection = change.collection;
  item.dataset.operation = op;
  if (change.id) item.dataset.id = change.id;
  list.prepend(item);
  while (list.children.length > MAX_CHANGES) list.lastElementChild.remove();
}

/** List (filter, sort, pages), create, edit and delete the items of one collection. */
export class CollectionBrowser {
  constructor(collections, api) {
    this.collections = collections;
    this.api = api;
    this.editing = null;
    this.select = document.getElementById("collection");
    this.select.replaceChildren(...collections.map((c) => el("option", { value: c.name, textContent: c.name })));
    this.table = document.getElementById("items");
    this.error = document.getElementById("query-error");
    this.form = document.getElementById("item-form");
    this.json = document.getElementById("item-json");
    this.pager = new Pager(document.querySelector("[data-pager=items]"), () => this.load());
    document.getElementById("query-form").addEventListener("submit", (e) => { e.preventDefault(); this.pager.pageNo = 1; this.load(); });
    this.select.addEventListener("change", () => { this.pager.pageNo = 1; this.newItem(); this.load(); });
    document.getElementById("item-new").addEventListener("click", () => this.newItem());
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.save(); });
    this.newItem();
  }

  get collection() { return this.collections.find((c) => c.name === this.select.value); }

  async load() {
    const collection = this.collection;
    if (!collection) return;
    this.pager.pageSize = Number(document.getElementById("page-size").value);
    const query = new URLSearchParams({ count: "true", pageNo: this.pager.pageNo, pageSize: this.pager.pageSize });
    const filter = document.getElementById("filter").value.trim();
    const sort = document.getElementById("sort").value.trim();
    if (filter) query.set("filter", filter);
    if (sort) query.set("sortBy", sort);
    this.error.textContent = "";
    try {
      const page = await this.api(`/api/${encodeURIComponent(collection.name)}?${query}`);
      this.pager.update(page.meta.count);
      this.render(collection, page.items);
    } catch (e) {
      this.error.textContent = e.message;
    }
  }

  render(collection, items) {
    const columns = ["id", ...collection.properties.map((p) => p.name), "_changed"];
    this.table.tHead.replaceChildren(el("tr", {}, ...columns.map((c) => el("th", { scope: "col", textContent: c })),
      el("th", { scope: "col" }, el("span", { className: "sr", textContent: "Actions" }))));
    this.table.tBodies[0].replaceChildren(...items.map((item) => {
      const row = el("tr", {}, ...columns.map((c) => {
        const v = item[c];
        return cell(v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v), c === "id" ? "mono" : "json");
      }), el("td", { className: "buttons" },
        button("Edit", `Edit ${item.id}`, () => this.edit(item)),
        this.deleteButton(item)));
      row.dataset.id = item.id;
      return row;
    }));
  }

  /** A change arrived over SignalR: reload the page it may be on and mark its row. */
  async changed(change) {
    if (change.collection !== this.select.value) return;
    await this.load();
    this.table.querySelector(`tr[data-id="${CSS.escape(String(change.id))}"]`)?.classList.add("flash");
  }

  newItem() {
    this.editing = null;
    const template = {};
    for (const p of this.collection?.properties ?? []) {
      template[p.name] = { string: "", integer: 0, decimal: 0, boolean: false, object: {} }[p.type] ?? null;
    }
    this.json.value = JSON.stringify(template, null, 2);
    document.getElementById("item-form-title").textContent = `New ${this.select.value || "item"}`;
    document.getElementById("item-save").textContent = "Create";
  }

  edit(item) {
    this.editing = item;
    const body = Object.fromEntries(Object.entries(item).filter(([k]) => !SYSTEM_FIELDS.includes(k)));
    this.json.value = JSON.stringify(body, null, 2);
    document.getElementById("item-form-title").textContent = `Edit ${item.id}`;
    document.getElementById("item-save").textContent = "Save";
    this.json.focus();
  }

  async save() {
    const out = this.form.querySelector(".result");
    out.classList.remove("failed");
    try {
      const body = JSON.parse(this.json.value);
      const name = encodeURIComponent(this.select.value);
      if (this.editing) {
        // The version read is the precondition: a concurrent edit is refused, not overwritten.
        const saved = await this.api(`/api/${name}/${encodeURIComponent(this.editing.id)}`, {
          method: "PUT", body, headers: { "if-match": String(this.editing._version) },
        });
        out.textContent = `Saved ${saved.id}.`;
        this.editing = saved;
      } else {
        const created = await this.api(`/api/${name}`, { method: "POST", body });
        out.textContent = `Created ${created.id}.`;
      }
      await this.load();
    } catch (e) {
      out.classList.add("failed");
      out.textContent = e.message;
    }
  }

  /** Delete asks once more on the same button (no modal dialog: keyboard and tests alike). */
  deleteButton(item) {
    const b = button("Delete", `Delete ${item.id}`, () => {
      if (b.dataset.armed) { this.remove(item); return; }
      b.dataset.armed = "1";
      b.textContent = "Confirm delete";
      b.setAttribute("aria-label", `Confirm: delete ${item.id}`);
    });
    b.addEventListener("blur", () => {
      delete b.dataset.armed;
      b.textContent = "Delete";
      b.setAttribute("aria-label", `Delete ${item.id}`);
    });
    return b;
  }

  async remove(item) {
    const out = this.form.querySelector(".result");
    out.classList.remove("failed");
    try {
      await this.api(`/api/${encodeURIComponent(this.select.value)}/${encodeURIComponent(item.id)}`, { method: "DELETE" });
      out.textContent = `Deleted ${item.id}.`;
      if (this.editing?.id === item.id) this.newItem();
      await this.load();
    } catch (e) {
      out.classList.add("failed");
      out.textContent = e.message;
    }
  }
}
