//! The reference of every config key, generated from the config types themselves (their
//! JSON schema, which carries their doc comments, defaults and allowed values), so that the
//! documentation cannot drift from what the parser accepts: `docs/config-reference.md` is
//! this module's output, and a test fails when the two differ.

use crate::config::RunConfig;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// The reference as Markdown: one table of keys per config table (`[data]`, `[model]` per
/// family, `[train]`, the nested tables), then the allowed values of every named choice.
pub fn markdown() -> String {
    let schema = schemars::schema_for!(RunConfig);
    let root = schema.as_value();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut writer = Writer {
        defs: &defs,
        out: String::new(),
        nested: Vec::new(),
        choices: Vec::new(),
    };
    writer.out.push_str(
        "# Config reference\n\n\
         Every key of a run's TOML config, generated from aekit's config types by \
         `aekit config reference` (do not edit by hand: a test compares this file with the \
         types). A key left out takes its default; a key marked *required* must be given. \
         Any key can also be set from the command line: `--set train.epochs=20`.\n",
    );
    writer.table("Top level", root);
    for (name, property) in properties(root) {
        let resolved = writer.resolve(property).clone();
        let resolved = &resolved;
        if let Some(variants) = resolved.get("oneOf").and_then(Value::as_array) {
            writer.variants(&format!("[{name}]"), variants);
        } else {
            writer.table(&format!("[{name}]"), resolved);
        }
    }
    while !writer.nested.is_empty() {
        let (title, def) = writer.nested.remove(0);
        let schema = writer.defs.get(&def).cloned().unwrap_or_default();
        writer.table(&title, &schema);
    }
    writer.choices_section();
    writer.out
}

struct Writer<'a> {
    defs: &'a Map<String, Value>,
    out: String,
    /// Nested tables still to write: (heading, definition name).
    nested: Vec<(String, String)>,
    /// Named choices met so far (definition names), listed at the end.
    choices: Vec<String>,
}

impl<'a> Writer<'a> {
    /// `schema` with a `$ref` followed.
    fn resolve<'s>(&self, schema: &'s Value) -> &'s Value
    where
        'a: 's,
    {
        match ref_name(schema) {
            Some(name) => self.defs.get(name).unwrap_or(schema),
            None => schema,
        }
    }

    /// One `[model]` table per family; families with the same keys share a table.
    fn variants(&mut self, title: &str, variants: &[Value]) {
        let mut groups: Vec<(Vec<String>, &Value)> = Vec::new();
        for variant in variants {
            let kind = variant
                .pointer("/properties/kind/const")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let keys = |v: &Value| -> Vec<String> {
                properties(v)
                    .filter(|(k, _)| k != "kind")
                    .map(|(k, p)| format!("{k}{p}"))
                    .collect()
            };
            match groups.iter_mut().find(|(_, v)| keys(v) == keys(variant)) {
                Some((kinds, _)) => kinds.push(kind),
                None => groups.push((vec![kind], variant)),
            }
        }
        for (kinds, variant) in groups {
            let names: Vec<String> = kinds.iter().map(|k| format!("`\"{k}\"`")).collect();
            let heading = format!("{title} with kind = {}", names.join(" or "));
            let intro: Vec<String> = variants
                .iter()
                .filter(|v| {
                    v.pointer("/properties/kind/const")
                        .and_then(Value::as_str)
                        .is_some_and(|k| kinds.iter().any(|n| n == k))
                })
                .map(|v| {
                    format!(
                        "- `{}`: {}",
                        v.pointer("/properties/kind/const")
                            .and_then(Value::as_str)
                            .unwrap_or("?"),
                        one_line(description(v))
                    )
                })
                .collect();
            let _ = write!(self.out, "\n## {heading}\n\n{}\n\n", intro.join("\n"));
            self.rows(variant, title.trim_matches(['[', ']']));
        }
    }

    fn table(&mut self, title: &str, schema: &Value) {
        let _ = write!(self.out, "\n## {title}\n\n");
        let text = description(schema);
        if !text.is_empty() && title != "Top level" {
            let _ = writeln!(self.out, "{}\n", one_line(text));
        }
        let prefix = title.trim_matches(['[', ']']).to_string();
        self.rows(schema, if title == "Top level" { "" } else { &prefix });
    }

    fn rows(&mut self, schema: &Value, prefix: &str) {
        self.out
            .push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (key, property) in properties(schema) {
            if key == "kind" && property.get("const").is_some() {
                continue;
            }
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            let kind = self.type_of(property, &path);
            let default = match property.get("default") {
                Some(Value::Object(_)) => "see its table".to_string(),
                Some(value) => format!("`{}`", toml_value(value)),
                None if required.contains(&key.as_str()) => "*required*".to_string(),
                None => "none".to_string(),
            };
            let _ = writeln!(
                self.out,
                "| `{key}` | {kind} | {default} | {} |",
                one_line(description(property)).replace('|', "\\|")
            );
        }
    }

    /// How a value of `schema` is written; a nested table or a named choice is queued for
    /// its own section.
    fn type_of(&mut self, schema: &Value, path: &str) -> String {
        if let Some(name) = ref_name(schema) {
            let def = self.defs.get(name).cloned().unwrap_or_default();
            if def.get("properties").is_some() {
                let title = format!("[{path}]");
                if !self.nested.iter().any(|(t, _)| *t == title) {
                    self.nested.push((title.clone(), name.to_string()));
                }
                return format!("table `{title}`");
            }
            let variants = def.get("oneOf").and_then(Value::as_array);
            if variants.is_some_and(|v| v.iter().all(|o| o.get("properties").is_some())) {
                // A table whose keys depend on its `kind` (the `[model]` families).
                return format!("table `[{path}]`");
            }
            if def.get("oneOf").is_some() || def.get("enum").is_some() {
                if !self.choices.iter().any(|c| c == name) {
                    self.choices.push(name.to_string());
                }
                return choice_list(&def);
            }
            return self.type_of(&def, path);
        }
        if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
            let kinds: Vec<String> = options
                .iter()
                .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                .map(|o| self.type_of(o, path))
                .collect();
            return kinds.join(" or ");
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ => Vec::new(),
        };
        match types.first().copied() {
            Some("array") => {
                let items = schema.get("items").cloned().unwrap_or_default();
                let count = schema.get("minItems").and_then(Value::as_u64);
                let inner = self.type_of(&items, path);
                match count {
                    Some(n) if schema.get("maxItems").and_then(Value::as_u64) == Some(n) => {
                        format!("{n} × {inner}")
                    }
                    _ => format!("list of {inner}"),
                }
            }
            Some("integer") => {
                if schema.get("minimum").and_then(Value::as_f64) == Some(0.0) {
                    "integer ≥ 0".into()
                } else {
                    "integer".into()
                }
            }
            Some("number") => "number".into(),
            Some("string") => "string".into(),
            Some("boolean") => "true/false".into(),
            Some(other) => other.into(),
            None => choice_list(schema),
        }
    }

    fn choices_section(&mut self) {
        if self.choices.is_empty() {
            return;
        }
        self.out.push_str("\n## Choices\n");
        let mut names = self.choices.clone();
        names.sort();
        for name in names {
            let def = self.defs.get(&name).cloned().unwrap_or_default();
            let _ = write!(self.out, "\n### {name}\n\n");
            let text = description(&def);
            if !text.is_empty() {
                let _ = writeln!(self.out, "{}\n", one_line(text));
            }
            for option in def
                .get("oneOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let value = match option.get("const") {
                    Some(v) => format!("`{}`", toml_value(v)),
                    None => format!(
                        "a {}",
                        option
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("value")
                    ),
                };
                let _ = writeln!(self.out, "- {value}: {}", one_line(description(option)));
            }
        }
    }
}

fn properties(schema: &Value) -> impl Iterator<Item = (String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v))
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
}

fn description(schema: &Value) -> &str {
    schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A doc comment as one Markdown table cell.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `"a"`, `"b"` or a number: the values a named choice takes.
fn choice_list(def: &Value) -> String {
    let values: Vec<String> = def
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|o| match o.get("const") {
            Some(v) => format!("`{}`", toml_value(v)),
            None => o
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("value")
                .to_string(),
        })
        .collect();
    if values.is_empty() {
        "value".into()
    } else {
        values.join(", ")
    }
}

/// A JSON value as it is written in TOML.
fn toml_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in reference is what the types generate.
    #[test]
    fn the_config_reference_matches_the_config_types() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config-reference.md");
        let generated = markdown();
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{} is out of date with the config types: regenerate it with \
             `cargo run -- config reference > docs/config-reference.md`",
            path.display()
        );
    }

    #[test]
    fn every_key_of_every_table_is_listed() {
        let text = markdown();
        for needle in [
            "## [data]",
            "| `label_column` |",
            "| `has_header` |",
            "| `image_size` |",
            "| `strict` |",
            "| `color` |",
            "| `runs_dir` |",
            "| `lr_schedule` |",
            "## [model] with kind = `\"dense\"` or `\"sparse\"`",
            "## [model] with kind = `\"vae\"`",
            "## [model] with kind = `\"conv\"`",
            "## [model.sparsity]",
            "### DataKind",
            "- `\"csv\"`:",
        ] {
            assert!(text.contains(needle), "missing {needle}:\n{text}");
        }
    }
}
