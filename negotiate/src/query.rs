//! Query strings read the way ASP.NET reads them: keys case-insensitively, first value wins.

#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_decoded() {
        let q = Query::parse(Some("NegotiateVersion=1&id=a%2Bb&id=second"));
        assert_eq!(q.get("negotiateversion"), Some("1"));
        assert_eq!(q.get("id"), Some("a+b"));
        assert_eq!(q.get("missing"), None);
        assert_eq!(Query::parse(None).get("id"), None);
    }
}
