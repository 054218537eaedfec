//! A component that exports the wrong world (`test:wrong/calculator`): loading it
//! as a signalbox plugin must fail with an error naming what it exports.

wit_bindgen::generate!({ world: "calculator", path: "wit" });

struct Plugin;

impl Guest for Plugin {
    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
}

export!(Plugin);
