//! A hostile operator for the host's tests. Its argument picks the misbehaviour
//! of `test`: `"loop"` spins forever, `"bomb"` allocates until memory runs out,
//! `"trap"` panics (a Wasm trap), `"ok"` returns true. `"loop-prepare"` spins in
//! `prepare` itself. Any other argument is rejected.

use exports::signalbox::plugin::conditions::{
    Condition, Guest as ConditionsGuest, GuestCondition, Value,
};

wit_bindgen::generate!({ world: "operator", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "hostile".into(),
            argument_shape: "\"loop\" | \"bomb\" | \"trap\" | \"ok\"".into(),
            version: "0".into(),
        }
    }
}

impl ConditionsGuest for Plugin {
    type Condition = Mode;
}

/// What `test` does.
struct Mode(String);

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl GuestCondition for Mode {
    fn prepare(argument: String) -> Result<Condition, String> {
        let mode = argument.trim_matches('"').to_string();
        match mode.as_str() {
            "loop-prepare" => spin(),
            "loop" | "bomb" | "trap" | "ok" => Ok(Condition::new(Mode(mode))),
            other => Err(format!("unknown mode {other}")),
        }
    }

    fn test(&self, _value: Value) -> Result<bool, String> {
        match self.0.as_str() {
            "loop" => spin(),
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile operator: deliberate trap"),
            _ => Ok(true),
        }
    }
}

export!(Plugin);
