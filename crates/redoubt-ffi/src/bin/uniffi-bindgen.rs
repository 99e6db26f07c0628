//! Generates the Kotlin, Swift and Python bindings from the built library
//! (`scripts/bindings.sh` runs it).

fn main() {
    uniffi::uniffi_bindgen_main()
}
