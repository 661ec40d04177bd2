//! The `echo` example tool: returns its argument. It does no I/O, so calling
//! it measures what a call costs the host: a fresh instance, argument and
//! result conversion, and the audit records.

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "airlock-examples:echo/echo-tool",
    generate_all,
});

use exports::airlock_examples::echo::text::Guest;

struct Echo;

impl Guest for Echo {
    fn echo(message: String) -> String {
        message
    }
}

export!(Echo);
