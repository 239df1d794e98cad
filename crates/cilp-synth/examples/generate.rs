//! `cargo run -p cilp-synth --example generate --release -- OUT [PER_CLASS] [SEED] [PRESET] [THREADS]`
use cilp_synth::{GenerateOptions, generate};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).expect("usage: generate OUT [PER_CLASS] [SEED] [PRESET] [THREADS]");
    let mut opts = GenerateOptions::preset(args.get(4).map_or("default", |s| s.as_str())).unwrap();
    if let Some(n) = args.get(2) {
        opts.per_class = n.parse().unwrap();
    }
    if let Some(s) = args.get(3) {
        opts.seed = s.parse().unwrap();
    }
    opts.threads = args.get(5).map(|t| t.parse().unwrap());
    opts.overwrite = true;
    match generate(std::path::Path::new(out), &opts) {
        Ok(r) => println!("{}", serde_json::to_string(&r).unwrap()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
