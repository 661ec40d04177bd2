//! The operator config and tool declaration parsers, and the effective
//! grant computed from them.
//!
//! The input is an operator config, optionally followed by a line `#---`
//! and a tool declaration. Neither parser may panic. When both parse, every
//! endpoint of every tool's effective grant must lie inside one of the
//! operator's grants for that tool: a declaration can only narrow.

#![no_main]

use airlock::manifest::effective::effective;
use airlock::manifest::{Config, Declaration};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // The declaration section reader sees raw bytes, as a component would
    // hand them over.
    let _ = airlock::manifest::section::read(data);

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (config_text, declaration_text) = match text.split_once("\n#---\n") {
        Some((c, d)) => (c, Some(d)),
        None => (text, None),
    };

    let config = Config::parse_all(config_text, Path::new("fuzz.toml"), Path::new("/"));
    check_errors(config.as_ref().err(), config_text);
    // The first-error form agrees with the every-error form.
    assert_eq!(
        Config::parse(config_text, Path::new("fuzz.toml"), Path::new("/")).is_ok(),
        config.is_ok()
    );

    let declaration = declaration_text.map(|d| (d, Declaration::parse(d, Path::new("d.toml"))));
    if let Some((d, parsed)) = &declaration {
        check_errors(parsed.as_ref().err(), d);
        if let Ok(parsed) = parsed {
            // Every declared URL pattern shows as text that parses back.
            for e in &parsed.endpoints {
                if let airlock::manifest::DeclaredUrl::Pattern(p) = &e.url {
                    assert_eq!(p.to_string().parse::<airlock::manifest::pattern::UrlPattern>().as_ref(), Ok(p));
                }
            }
        }
    }

    let Ok(config) = config else {
        return;
    };
    let declaration = match &declaration {
        Some((_, Ok(d))) => Some(d),
        Some((_, Err(_))) => return,
        None => None,
    };
    for (name, tool) in &config.tools {
        let granted = effective(name, tool, &config.connections, declaration);
        for e in &granted.endpoints {
            let inside = tool.endpoints.iter().any(|g| {
                g.connection == e.connection
                    && g.allow_private == e.allow_private
                    && g.url.covers(&e.url)
                    && g.methods.covers(&e.methods)
                    && e.scopes.iter().all(|s| g.scopes.contains(s))
            });
            assert!(inside, "effective endpoint {} {} is outside every grant", e.methods, e.url);
        }
        for key in granted.config.keys() {
            let known = tool.config.contains_key(key)
                || declaration.is_some_and(|d| d.config.contains_key(key));
            assert!(known, "config key {key:?} came from nowhere");
        }
        for finding in &granted.findings {
            let _ = finding.describe();
        }
    }
});

/// Errors are non-empty, in file order, and point inside the text.
fn check_errors(errors: Option<&Vec<airlock::manifest::ConfigError>>, text: &str) {
    let Some(errors) = errors else {
        return;
    };
    assert!(!errors.is_empty());
    let lines = text.split('\n').count();
    let mut last = (0, 0);
    for e in errors {
        let at = e.position();
        assert!(at >= last, "errors out of order");
        assert!(at.0 >= 1 && at.0 <= lines, "line {} of {lines}", at.0);
        last = at;
        let _ = e.to_string();
    }
}
