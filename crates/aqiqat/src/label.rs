//! `aqiqat label`: sign AI-generated content with C2PA Content Credentials that say so, for
//! the providers the law obliges to label their output.
//!
//! With `--key`/`--cert` the provider's own certificate signs. Without them this
//! installation's labelling identity does: a CA and a claim-signing certificate made on first
//! use under `<data-dir>/keys/label/`. Verifiers then see the label as `valid`; they see it as
//! `trusted` once they add that `ca.pem` to their trust anchors.

use crate::Outcome;
use aqiqat_provenance::credentials::{
    CredentialsOutcome, LabelRequest, LabelSigner, LocalIdentity, TrustAnchors, label,
    read_credentials,
};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct LabelArgs {
    /// The image or audio file to label (PNG, JPEG, WebP, GIF, HEIF/AVIF, WAV, MP3, M4A).
    pub file: PathBuf,
    /// Where to write the labelled file.
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// The AI system that generated the content, e.g. "Acme ImageGen 3".
    #[arg(long, value_name = "NAME")]
    pub generator: String,
    /// The signing key (PEM, PKCS#8).
    #[arg(long, requires = "cert", value_name = "KEY.pem")]
    pub key: Option<PathBuf>,
    /// The signing certificate chain (PEM, end-entity first), issued for C2PA signing.
    #[arg(long, requires = "key", value_name = "CERT.pem")]
    pub cert: Option<PathBuf>,
    /// The signature algorithm; inferred from the certificate's key when not given.
    #[arg(long, value_name = "ALG")]
    pub alg: Option<String>,
    /// The manifest's title (default: the file name).
    #[arg(long)]
    pub title: Option<String>,
    /// Leave the content as it is and write the manifest store beside OUT as a `.c2pa`
    /// sidecar (for formats or pipelines that must not be rewritten).
    #[arg(long)]
    pub sidecar: bool,
}

fn bad(msg: String) -> Outcome {
    eprintln!("error: {msg}");
    Outcome::BadInput
}

pub fn run(data_dir: Option<&Path>, args: LabelArgs) -> Outcome {
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => return bad(format!("{}: {e}", args.file.display())),
    };
    let Some(media_type) = aqiqat_scan::media_type(&bytes) else {
        return bad(format!(
            "{}: not a kind of file aqiqat can label (images: PNG, JPEG, WebP, GIF, HEIF/AVIF; \
             audio: WAV, MP3, M4A)",
            args.file.display()
        ));
    };
    let alg = match args.alg.as_deref().map(str::parse) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            return bad(
                "--alg must be one of es256, es384, es512, ps256, ps384, ps512, ed25519".into(),
            );
        }
    };
    let (chain, key) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => match (std::fs::read(cert), std::fs::read(key)) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) => return bad(format!("{}: {e}", cert.display())),
            (_, Err(e)) => return bad(format!("{}: {e}", key.display())),
        },
        _ => match installation_identity(data_dir) {
            Ok(pair) => pair,
            Err(o) => return o,
        },
    };
    let signer = match LabelSigner::from_pem(&chain, &key, alg) {
        Ok(s) => s,
        Err(e) => return bad(e.to_string()),
    };
    let title = args.title.clone().or_else(|| {
        args.file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let request = LabelRequest {
        generator: &args.generator,
        title: title.as_deref(),
        media_type,
    };
    let labelled = match label(&bytes, &request, &signer, !args.sidecar) {
        Ok(l) => l,
        Err(e) => return bad(format!("{}: {e}", args.file.display())),
    };

    // Read the label back before handing it out: a label that does not hold is worse than none.
    let sidecar = args.sidecar.then_some(&labelled.manifest_store[..]);
    let check = read_credentials(
        &labelled.asset,
        media_type,
        sidecar,
        &TrustAnchors::default(),
    );
    let credentials = match check {
        CredentialsOutcome::Found(c) if c.holds() => c,
        other => {
            eprintln!("internal error: the label just written does not validate: {other:?}");
            return Outcome::Internal;
        }
    };
    if let Err(o) = crate::evidence::write_atomic(&args.out, &labelled.asset) {
        return o;
    }
    let mut written = vec![args.out.display().to_string()];
    if args.sidecar {
        let store = args.out.with_extension("c2pa");
        if let Err(o) = crate::evidence::write_atomic(&store, &labelled.manifest_store) {
            return o;
        }
        written.push(store.display().to_string());
    }
    println!("labelled: {}", written.join(" + "));
    println!(
        "  declares   {} (c2pa.created by {})",
        credentials.digital_source_type.as_deref().unwrap_or("?"),
        args.generator
    );
    if let Some(signer) = &credentials.signer {
        println!(
            "  signed by  {}",
            signer.common_name.as_deref().unwrap_or("?")
        );
    }
    Outcome::Ok
}

/// This installation's labelling certificate chain and key, made on first use.
fn installation_identity(data_dir: Option<&Path>) -> Result<(Vec<u8>, Vec<u8>), Outcome> {
    let keys = aqiqat_evidence::keys::key_dir(&crate::evidence::data_dir(data_dir)?);
    let dir = keys.join("label");
    let (chain_path, key_path) = (dir.join("cert-chain.pem"), dir.join("key.pem"));
    if !dir.exists() {
        create_identity(&keys, &dir)?;
    }
    let fail = |e: aqiqat_evidence::EvidenceError| {
        eprintln!("error: {e}");
        Outcome::Internal
    };
    aqiqat_evidence::keys::check_private_mode(&key_path).map_err(fail)?;
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| fail(aqiqat_evidence::EvidenceError::io(path, e)))
    };
    Ok((read(&chain_path)?, read(&key_path)?))
}

/// Writes a fresh identity into a private folder of its own, then renames that folder into
/// place: the key and its certificates appear together or not at all, and of two processes
/// racing here the second finds the first one's folder and uses it.
fn create_identity(keys: &Path, dir: &Path) -> Result<(), Outcome> {
    use aqiqat_evidence::keys::{create_private_dir, private_file};
    use std::io::Write;
    let fail = |e: aqiqat_evidence::EvidenceError| {
        eprintln!("error: {e}");
        Outcome::Internal
    };
    let identity = LocalIdentity::generate("aqiqat installation").map_err(|e| {
        eprintln!("internal error: {e}");
        Outcome::Internal
    })?;
    let tmp = keys.join(format!(".label-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    create_private_dir(&tmp).map_err(fail)?;
    let write = |name: &str, contents: &str| {
        let path = tmp.join(name);
        let mut f = private_file(&path)?;
        f.write_all(contents.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| aqiqat_evidence::EvidenceError::io(&path, e))
    };
    write("cert-chain.pem", &identity.chain_pem)
        .and_then(|_| write("ca.pem", &identity.ca_pem))
        .and_then(|_| write("key.pem", &identity.key_pem))
        .map_err(fail)?;
    match std::fs::rename(&tmp, dir) {
        Ok(()) => eprintln!(
            "made this installation's labelling certificate in {}; give {} to verifiers who \
             should trust its labels",
            dir.display(),
            dir.join("ca.pem").display()
        ),
        // Another process made it first.
        Err(_) if dir.join("key.pem").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(fail(aqiqat_evidence::EvidenceError::io(dir, e)));
        }
    }
    Ok(())
}
