//! What went differently from what an example promised, printed as it is checked.

/// Collects the promises an example's run broke.
#[derive(Default)]
pub struct Checks(pub Vec<String>);

impl Checks {
    /// Prints `what` with ok or FAIL, and keeps it if it failed.
    pub fn expect(&mut self, ok: bool, what: &str) {
        println!("    {} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.0.push(what.to_owned());
        }
    }
}
