//! Cross-checks the DWT-DCT watermark against another implementation through raw RGB files
//! (width × height × 3 bytes, rows top to bottom):
//!
//! ```text
//! cargo run -p aqiqat-provenance --example watermark_raw -- detect W H IN.rgb
//! cargo run -p aqiqat-provenance --example watermark_raw -- embed W H IN.rgb OUT.rgb
//! ```
//!
//! Both use Stable Diffusion's message and the default steps.

use aqiqat_provenance::watermark::{
    DEFAULT_SCALES, RgbImage, STABLE_DIFFUSION_MESSAGE, detect, embed, message_bits,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: watermark_raw detect|embed W H IN.rgb [OUT.rgb]";
    let (Some(verb), Some(w), Some(h), Some(input)) =
        (args.first(), args.get(1), args.get(2), args.get(3))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mut image = RgbImage {
        width: w.parse().expect("width"),
        height: h.parse().expect("height"),
        data: std::fs::read(input).expect("read the image"),
    };
    match verb.as_str() {
        "detect" => {
            let found = detect(&image, STABLE_DIFFUSION_MESSAGE).expect("detect");
            println!(
                "{{\"bit_agreement\": {}, \"detected\": {}}}",
                found.bit_agreement, found.detected
            );
        }
        "embed" => {
            let out = args.get(4).expect(usage);
            embed(
                &mut image,
                &message_bits(STABLE_DIFFUSION_MESSAGE),
                DEFAULT_SCALES,
            )
            .expect("embed");
            std::fs::write(out, &image.data).expect("write");
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
