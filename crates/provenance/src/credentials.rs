//! C2PA Content Credentials: find a manifest store (embedded, or a `.c2pa` sidecar), validate
//! it with the Content Authenticity Initiative's SDK (the `c2pa` crate), and say what it
//! claims and whether it holds, in plain words; and write one ([`label`]) that declares
//! content AI-generated.
//!
//! The SDK does the cryptography and the C2PA validation rules; this module decides what a
//! reader of an aqiqat report needs from the result: who signed, whether the certificate
//! chains to a trust anchor the user gave, what the content declares about its origin
//! (`digitalSourceType`), what was done to it (actions, ingredients), and every validation
//! failure with its meaning. Nothing here reaches the network: the crate is built without
//! its HTTP features, so remote manifests, OCSP and timestamp servers are never contacted.

use crate::markers::digital_source_meaning;
use c2pa::{Builder, BuilderIntent, Context, DigitalSourceType, Reader, SigningAlg};
use serde::Serialize;
use serde_json::{Value, json};
use std::io::Cursor;

/// Where a manifest store was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestSource {
    Embedded,
    Sidecar,
}

/// The C2PA validation state of the active manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialState {
    /// Well formed, signature and content binding hold, and the signer's certificate chains
    /// to one of the trust anchors given.
    Trusted,
    /// Well formed, signature and content binding hold; the signer's certificate is not
    /// known to chain to a trust anchor (none given, or not on the list).
    Valid,
    /// Something does not hold: see `failures`.
    Invalid,
}

/// The certificate that signed the active manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignerInfo {
    pub common_name: Option<String>,
    /// The organisation that issued the certificate.
    pub issuer: Option<String>,
    pub serial_number: Option<String>,
    /// The signing time the manifest claims (from a trusted timestamp when one is present).
    pub signed_at: Option<String>,
    pub algorithm: Option<String>,
}

/// One action of the active manifest (`c2pa.created`, `c2pa.edited`, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionFinding {
    pub action: String,
    /// The last part of the IPTC/C2PA digital source type URI, e.g. `trainedAlgorithmicMedia`.
    pub digital_source_type: Option<String>,
    /// The tool the action names (for AI content: the generator).
    pub software_agent: Option<String>,
    pub when: Option<String>,
    pub description: Option<String>,
}

/// One ingredient the active manifest names (a parent or a component it was made from).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngredientFinding {
    pub title: Option<String>,
    pub format: Option<String>,
    /// `parentOf`, `componentOf` or `inputTo`.
    pub relationship: String,
    /// The ingredient carried Content Credentials of its own.
    pub has_credentials: bool,
    /// What the ingredient's own manifest declares, when it has one.
    pub digital_source_type: Option<String>,
}

/// A validation result that is not a success, with its meaning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationIssue {
    /// The C2PA status code, e.g. `assertion.dataHash.mismatch`.
    pub code: String,
    /// What it means for the reader, in plain words.
    pub meaning: String,
    /// The SDK's own explanation, when it gave one.
    pub detail: Option<String>,
    /// Whether it concerns an ingredient rather than the asset itself.
    pub in_ingredient: bool,
}

/// What the Content Credentials of one file say, and whether they hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentCredentials {
    pub source: ManifestSource,
    pub state: CredentialState,
    /// The state in one sentence.
    pub summary: String,
    /// The tool that wrote the manifest, e.g. `aqiqat/0.1.0`.
    pub claim_generator: Option<String>,
    pub title: Option<String>,
    pub signer: Option<SignerInfo>,
    /// The certificate's standing, in plain words.
    pub certificate: String,
    /// How the content says it was made (the active manifest's `c2pa.created` action, else
    /// the first action that declares one), as the URI's last part.
    pub digital_source_type: Option<String>,
    /// The same, as the full URI the manifest carries.
    pub digital_source_type_uri: Option<String>,
    /// What that digital source type means.
    pub digital_source_meaning: Option<String>,
    /// The manifest declares the content made by, or composited with, generative AI, or
    /// derived from an ingredient whose own credentials declare it.
    pub declares_ai: bool,
    /// The title of the ingredient whose own credentials declare AI, when that is what makes
    /// `declares_ai` true.
    pub ai_ingredient: Option<String>,
    pub actions: Vec<ActionFinding>,
    pub ingredients: Vec<IngredientFinding>,
    /// Every failure the validation reported, with its meaning.
    pub failures: Vec<ValidationIssue>,
    /// Manifests in the store (the active one and those of ingredients).
    pub manifests: usize,
}

impl ContentCredentials {
    /// The label holds: the manifest is intact, bound to these exact bytes and validly signed.
    pub fn holds(&self) -> bool {
        self.state != CredentialState::Invalid
    }
}

/// Trust anchors: the root certificates (PEM) whose signers a user accepts. Without any,
/// a valid manifest is `valid`, never `trusted`.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    pub pem: Option<String>,
}

/// The outcome of looking for Content Credentials.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CredentialsOutcome {
    /// No manifest store in the file (and no sidecar given).
    Absent,
    /// A manifest store was found; see its state.
    Found(Box<ContentCredentials>),
    /// Something that looks like a manifest store was found but could not be read at all.
    Unreadable { reason: String },
    /// The SDK cannot look inside this kind of file.
    Unsupported { media_type: String },
}

fn context(trust: &TrustAnchors) -> c2pa::Result<Context> {
    let mut settings = json!({
        "verify": { "ocsp_fetch": false, "remote_manifest_fetch": false },
        "builder": { "thumbnail": { "enabled": false } },
    });
    if let Some(pem) = &trust.pem {
        settings["trust"] = json!({ "trust_anchors": pem });
    }
    Context::new().with_settings(settings)
}

/// Reads and validates the Content Credentials of `bytes` (of media type `media_type`, e.g.
/// `image/jpeg`; the SDK also sniffs). `sidecar` is a detached `.c2pa` manifest store for the
/// same bytes, when one came with them.
pub fn read_credentials(
    bytes: &[u8],
    media_type: &str,
    sidecar: Option<&[u8]>,
    trust: &TrustAnchors,
) -> CredentialsOutcome {
    read_credentials_from(Cursor::new(bytes), media_type, sidecar, trust)
}

/// [`read_credentials`] from a stream (a file too large to hold in memory: the SDK hashes
/// it as it reads).
pub fn read_credentials_from(
    stream: impl std::io::Read + std::io::Seek + Send,
    media_type: &str,
    sidecar: Option<&[u8]>,
    trust: &TrustAnchors,
) -> CredentialsOutcome {
    if !Reader::supported_mime_types()
        .iter()
        .any(|t| t == media_type)
    {
        return CredentialsOutcome::Unsupported {
            media_type: media_type.to_owned(),
        };
    }
    let context = match context(trust) {
        Ok(c) => c,
        Err(e) => {
            return CredentialsOutcome::Unreadable {
                reason: format!("the trust anchors could not be used: {e}"),
            };
        }
    };
    let reader = Reader::from_context(context);
    // The SDK must not be able to take the process down on a hostile file.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match sidecar {
        Some(store) => reader.with_manifest_data_and_stream(store, media_type, stream),
        None => reader.with_stream(media_type, stream),
    }));
    let source = if sidecar.is_some() {
        ManifestSource::Sidecar
    } else {
        ManifestSource::Embedded
    };
    match read {
        Ok(Ok(reader)) => CredentialsOutcome::Found(Box::new(describe(&reader, source))),
        Ok(Err(c2pa::Error::JumbfNotFound | c2pa::Error::ProvenanceMissing)) => {
            CredentialsOutcome::Absent
        }
        Ok(Err(c2pa::Error::UnsupportedType)) => CredentialsOutcome::Unsupported {
            media_type: media_type.to_owned(),
        },
        Ok(Err(e)) => CredentialsOutcome::Unreadable {
            reason: format!("the manifest store could not be read: {e}"),
        },
        Err(_) => CredentialsOutcome::Unreadable {
            reason: "the manifest store made the C2PA reader fail".to_owned(),
        },
    }
}

fn short_source_type(uri: &str) -> String {
    uri.rsplit('/').next().unwrap_or(uri).to_owned()
}

fn declares_ai(code: &str) -> bool {
    digital_source_meaning(code).1 || code == "trainedAlgorithmicData"
}

fn agent_name(agent: &Value) -> Option<String> {
    match agent {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => {
            let name = o.get("name")?.as_str()?;
            Some(match o.get("version").and_then(Value::as_str) {
                Some(v) => format!("{name} {v}"),
                None => name.to_owned(),
            })
        }
        _ => None,
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The actions of a manifest, from its JSON form (which covers `c2pa.actions` and
/// `c2pa.actions.v2` alike).
fn actions_of(manifest: &Value) -> Vec<ActionFinding> {
    let Some(assertions) = manifest.get("assertions").and_then(Value::as_array) else {
        return Vec::new();
    };
    assertions
        .iter()
        .filter(|a| {
            a.get("label")
                .and_then(Value::as_str)
                .is_some_and(|l| l == "c2pa.actions" || l.starts_with("c2pa.actions.v"))
        })
        .filter_map(|a| a.get("data")?.get("actions")?.as_array())
        .flatten()
        .map(|action| ActionFinding {
            action: text(action, "action").unwrap_or_default(),
            digital_source_type: text(action, "digitalSourceType"),
            software_agent: action.get("softwareAgent").and_then(agent_name),
            when: text(action, "when"),
            description: text(action, "description"),
        })
        .collect()
}

/// The digital source type a manifest declares: its `c2pa.created` action's, else the first
/// action's that has one. Returns the URI.
fn declared_source_type(actions: &[ActionFinding]) -> Option<String> {
    actions
        .iter()
        .find(|a| a.action == "c2pa.created" && a.digital_source_type.is_some())
        .or_else(|| actions.iter().find(|a| a.digital_source_type.is_some()))
        .and_then(|a| a.digital_source_type.clone())
}

/// The tool that wrote the claim: `claim_generator_info` (C2PA 2.x) names it and its parts;
/// the older `claim_generator` string is the fallback.
fn claim_generator(manifest: &Value) -> Option<String> {
    let names: Vec<String> = manifest
        .get("claim_generator_info")
        .and_then(Value::as_array)
        .map(|infos| infos.iter().filter_map(agent_name).collect())
        .unwrap_or_default();
    if names.is_empty() {
        text(manifest, "claim_generator")
    } else {
        Some(names.join(", "))
    }
}

fn describe(reader: &Reader, source: ManifestSource) -> ContentCredentials {
    let state = match reader.validation_state() {
        c2pa::ValidationState::Trusted => CredentialState::Trusted,
        c2pa::ValidationState::Valid => CredentialState::Valid,
        c2pa::ValidationState::Invalid => CredentialState::Invalid,
    };
    let manifest = reader.active_manifest();
    let manifest_json = manifest
        .and_then(|m| serde_json::to_value(m).ok())
        .unwrap_or(Value::Null);
    let mut actions = actions_of(&manifest_json);
    let source_type_uri = declared_source_type(&actions);
    let digital_source_type = source_type_uri.as_deref().map(short_source_type);
    let declares = actions
        .iter()
        .filter_map(|a| a.digital_source_type.as_deref())
        .any(|uri| declares_ai(&short_source_type(uri)));
    // Short codes in the per-action list read better; the URI is kept once, above.
    for action in &mut actions {
        action.digital_source_type = action.digital_source_type.as_deref().map(short_source_type);
    }

    let ingredients: Vec<IngredientFinding> = manifest
        .map(|m| {
            m.ingredients()
                .iter()
                .map(|ingredient| {
                    let own = ingredient
                        .active_manifest()
                        .and_then(|label| reader.get_manifest(label))
                        .and_then(|m| serde_json::to_value(m).ok());
                    IngredientFinding {
                        title: ingredient.title().map(str::to_owned),
                        format: ingredient.format().map(str::to_owned),
                        relationship: serde_json::to_value(ingredient.relationship())
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        has_credentials: own.is_some(),
                        digital_source_type: own
                            .as_ref()
                            .and_then(|m| declared_source_type(&actions_of(m)))
                            .map(|uri| short_source_type(&uri)),
                    }
                })
                .collect()
        })
        .unwrap_or_default();

    let ai_ingredient = if declares {
        None
    } else {
        ingredients
            .iter()
            .find(|i| i.digital_source_type.as_deref().is_some_and(declares_ai))
            .map(|i| i.title.clone().unwrap_or_else(|| "untitled".to_owned()))
    };

    let mut failures = Vec::new();
    if let Some(results) = reader.validation_results() {
        if let Some(active) = results.active_manifest() {
            for status in active.failure() {
                failures.push(issue(status.code(), status.explanation(), false));
            }
        }
        for delta in results.ingredient_deltas().into_iter().flatten() {
            for status in delta.validation_deltas().failure() {
                failures.push(issue(status.code(), status.explanation(), true));
            }
        }
    }
    if manifest.is_none() && failures.is_empty() {
        failures.push(issue(
            "claim.missing",
            Some("the store names no active manifest"),
            false,
        ));
    }

    let signature = manifest.and_then(|m| m.signature_info());
    let signer = signature.map(|s| SignerInfo {
        common_name: s.common_name.clone(),
        issuer: s.issuer.clone(),
        serial_number: s.cert_serial_number.clone(),
        signed_at: s.time.clone(),
        algorithm: s.alg.map(|a| a.to_string()),
    });
    let untrusted = failures
        .iter()
        .any(|f| f.code == c2pa::validation_status::SIGNING_CREDENTIAL_UNTRUSTED);
    let certificate = match (state, signer.is_some(), untrusted) {
        (CredentialState::Trusted, _, _) => {
            "the signer's certificate chains to a trust anchor you gave".to_owned()
        }
        (_, false, _) => "no signer could be identified".to_owned(),
        (_, true, true) => "the signer's certificate is well formed but does not chain to any \
            trust anchor given to aqiqat: the signature shows the content is unchanged since \
            this signer signed it, not who the signer really is"
            .to_owned(),
        (_, true, false) => {
            "the signer's certificate was not checked against a trust list".to_owned()
        }
    };
    let summary = match state {
        CredentialState::Trusted => {
            "Content Credentials intact, bound to these bytes, signed by a trusted signer"
        }
        CredentialState::Valid => {
            "Content Credentials intact and bound to these bytes; the signer is not on a trust \
             list"
        }
        CredentialState::Invalid => {
            "Content Credentials present but they do not hold: see the failures"
        }
    }
    .to_owned();

    ContentCredentials {
        source,
        state,
        summary,
        claim_generator: claim_generator(&manifest_json),
        title: manifest.and_then(|m| m.title()).map(str::to_owned),
        signer,
        certificate,
        digital_source_meaning: digital_source_type
            .as_deref()
            .map(|code| digital_source_meaning(code).0),
        digital_source_type,
        digital_source_type_uri: source_type_uri,
        declares_ai: declares || ai_ingredient.is_some(),
        ai_ingredient,
        actions,
        ingredients,
        failures,
        manifests: reader.manifests().len(),
    }
}

fn issue(code: &str, detail: Option<&str>, in_ingredient: bool) -> ValidationIssue {
    ValidationIssue {
        code: code.to_owned(),
        meaning: failure_meaning(code).to_owned(),
        detail: detail.map(str::to_owned),
        in_ingredient,
    }
}

/// What a C2PA failure code means to someone deciding whether to believe a file.
pub fn failure_meaning(code: &str) -> &'static str {
    use c2pa::validation_status as s;
    match code {
        s::ASSERTION_DATAHASH_MISMATCH
        | s::ASSERTION_BMFFHASH_MISMATCH
        | s::ASSERTION_BOXHASH_MISMATCH
        | s::ASSERTION_COLLECTIONHASH_MISMATCH => {
            "the content no longer matches what was signed (the hard binding is broken): the \
             file was changed after it was labelled"
        }
        s::HARD_BINDINGS_MISSING => {
            "the manifest is not bound to any content, so it could have been copied from \
             another file"
        }
        s::HARD_BINDINGS_MULTIPLE => "the manifest binds the content more than once",
        s::CLAIM_SIGNATURE_MISMATCH => {
            "the signature does not verify over the claim: the manifest was altered after \
             signing, or the signer's certificate does not meet the C2PA certificate profile"
        }
        s::CLAIM_SIGNATURE_MISSING => "the manifest carries no signature",
        s::CLAIM_SIGNATURE_OUTSIDE_VALIDITY => {
            "the signature was made outside the certificate's validity period"
        }
        s::ASSERTION_HASHEDURI_MISMATCH | s::HASHED_URI_MISMATCH => {
            "a statement inside the manifest was changed after signing"
        }
        s::ASSERTION_MISSING | s::HASHED_URI_MISSING => {
            "a statement the signed claim refers to is missing from the manifest"
        }
        s::ASSERTION_UNDECLARED => "the manifest holds a statement the signed claim does not list",
        s::ASSERTION_INACCESSIBLE => "a statement in the manifest could not be read",
        s::SIGNING_CREDENTIAL_UNTRUSTED => {
            "the signer's certificate does not chain to a trust anchor given to aqiqat"
        }
        s::SIGNING_CREDENTIAL_INVALID => {
            "the signer's certificate is not acceptable for C2PA signing (malformed, wrong key \
             usage, or self-signed)"
        }
        s::SIGNING_CREDENTIAL_REVOKED => "the signer's certificate has been revoked",
        s::SIGNING_CREDENTIAL_EXPIRED => "the signer's certificate had expired when it signed",
        s::TIMESTAMP_MISMATCH | s::TIMESTAMP_MALFORMED => {
            "the trusted timestamp does not belong to this signature"
        }
        s::TIMESTAMP_OUTSIDE_VALIDITY => "the timestamp lies outside the certificate's validity",
        s::TIMESTAMP_UNTRUSTED => "the timestamp authority is not trusted",
        s::ALGORITHM_UNSUPPORTED => "the manifest uses a signature or hash algorithm not allowed",
        s::CLAIM_MISSING => "the manifest store holds no claim",
        s::CLAIM_MALFORMED | s::CLAIM_CBOR_INVALID => "the claim is malformed",
        s::CLAIM_MULTIPLE => "the manifest holds more than one claim",
        s::CLAIM_REQUIRED_MISSING => "the claim lacks a field C2PA requires",
        s::MANIFEST_INACCESSIBLE => "the manifest could not be read from the file",
        s::MANIFEST_MULTIPLE_PARENTS => "the manifest names more than one parent",
        s::INGREDIENT_MANIFEST_MISSING
        | s::INGREDIENT_MANIFEST_MISMATCH
        | s::INGREDIENT_CLAIM_SIGNATURE_MISSING
        | s::INGREDIENT_CLAIM_SIGNATURE_MISMATCH
        | s::INGREDIENT_HASHEDURI_MISMATCH => {
            "the credentials of an ingredient (a file this one was made from) do not hold"
        }
        s::ASSERTION_ACTION_INGREDIENT_MISMATCH => {
            "an action names an ingredient the manifest does not hold"
        }
        s::ASSERTION_ACTION_MALFORMED | s::ASSERTION_CBOR_INVALID | s::ASSERTION_JSON_INVALID => {
            "a statement in the manifest is malformed"
        }
        s::GENERAL_ERROR => "the C2PA reader reported an error",
        _ => "a C2PA validation check failed (see the code)",
    }
}

/// What goes into a label: the generator that made the content, and the signer.
pub struct LabelRequest<'a> {
    /// The AI system that generated the content, e.g. `Acme ImageGen 3`.
    pub generator: &'a str,
    /// A title for the manifest (usually the file name).
    pub title: Option<&'a str>,
    /// The media type of the content, e.g. `image/png`.
    pub media_type: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("this kind of file ({0}) cannot carry embedded Content Credentials")]
    Unsupported(String),
    #[error("the signing key or certificate cannot be used: {0}")]
    Credentials(String),
    #[error("the manifest could not be written: {0}")]
    Write(String),
}

/// A certificate chain (end-entity first) and its private key, both PEM, ready to sign.
pub struct LabelSigner {
    signer: Box<dyn c2pa::Signer>,
}

impl LabelSigner {
    /// `alg` is inferred from the certificate's key when not given.
    pub fn from_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        alg: Option<SigningAlg>,
    ) -> Result<Self, LabelError> {
        let inferred = check_certificate(chain_pem)?;
        let alg = alg.unwrap_or(inferred);
        let signer = c2pa::create_signer::from_keys(chain_pem, key_pem, alg, None)
            .map_err(|e| LabelError::Credentials(e.to_string()))?;
        Ok(Self { signer })
    }
}

/// Checks what the SDK would otherwise only reject at validation time, with a misleading
/// "claim signature not valid", and returns the C2PA algorithm that fits the end-entity
/// certificate's public key.
fn check_certificate(chain_pem: &[u8]) -> Result<SigningAlg, LabelError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem)
        .map_err(|e| LabelError::Credentials(format!("the certificate is not PEM: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| LabelError::Credentials(format!("the certificate is not X.509: {e}")))?;
    if cert.subject().iter_organization().next().is_none() {
        return Err(LabelError::Credentials(
            "the signing certificate's subject names no organization (O=…); C2PA validators \
             refuse such signers"
                .to_owned(),
        ));
    }
    let spki = cert.public_key();
    let alg_oid = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    match (alg_oid.as_str(), curve.as_deref()) {
        ("1.3.101.112", _) => Ok(SigningAlg::Ed25519),
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => Ok(SigningAlg::Es256),
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => Ok(SigningAlg::Es384),
        ("1.2.840.10045.2.1", Some("1.3.132.0.35")) => Ok(SigningAlg::Es512),
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10", _) => Ok(SigningAlg::Ps256),
        (other, _) => Err(LabelError::Credentials(format!(
            "the certificate's key type ({other}) is not one C2PA signs with; give --alg"
        ))),
    }
}

/// A labelled file, and its manifest store on its own (what a `.c2pa` sidecar holds).
pub struct Labelled {
    /// The file with the manifest embedded, or the unchanged bytes when not embedded.
    pub asset: Vec<u8>,
    pub manifest_store: Vec<u8>,
}

/// Embeds (or, with `embed` false, only builds) a signed C2PA manifest for `bytes` declaring the content generated by a trained AI
/// model (`digitalSourceType: trainedAlgorithmicMedia`), with a `c2pa.created` action naming
/// the generator.
pub fn label(
    bytes: &[u8],
    request: &LabelRequest<'_>,
    signer: &LabelSigner,
    embed: bool,
) -> Result<Labelled, LabelError> {
    if !Builder::supported_mime_types()
        .iter()
        .any(|t| t == request.media_type)
    {
        return Err(LabelError::Unsupported(request.media_type.to_owned()));
    }
    let context =
        context(&TrustAnchors::default()).map_err(|e| LabelError::Write(e.to_string()))?;
    let mut builder = Builder::from_context(context);
    builder.set_intent(BuilderIntent::Create(
        DigitalSourceType::TrainedAlgorithmicMedia,
    ));
    let definition = json!({
        "title": request.title.unwrap_or("AI-generated content"),
        "claim_generator_info": [{ "name": "aqiqat", "version": env!("CARGO_PKG_VERSION") }],
    });
    builder = builder
        .with_definition(definition)
        .map_err(|e| LabelError::Write(e.to_string()))?;
    builder
        .add_action(json!({
            "action": "c2pa.created",
            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
            "softwareAgent": { "name": request.generator },
            "description": format!("generated by {}", request.generator),
        }))
        .map_err(|e| LabelError::Write(e.to_string()))?;
    builder.set_no_embed(!embed);
    let mut source = Cursor::new(bytes);
    let mut dest = Cursor::new(Vec::with_capacity(bytes.len() + 64 * 1024));
    let manifest_store = builder
        .sign(
            signer.signer.as_ref(),
            request.media_type,
            &mut source,
            &mut dest,
        )
        .map_err(|e| LabelError::Write(e.to_string()))?;
    let asset = if embed {
        dest.into_inner()
    } else {
        bytes.to_vec()
    };
    Ok(Labelled {
        asset,
        manifest_store,
    })
}

/// A fresh certificate authority and a C2PA signing certificate under it, for a labelling
/// service that has no certificate from a public C2PA-recognised CA yet. Validators will call
/// such labels `valid` but not `trusted` unless they are given `ca_pem` as a trust anchor.
pub struct LocalIdentity {
    /// The signing certificate then the CA certificate, PEM.
    pub chain_pem: String,
    /// The signing key, PKCS#8 PEM. Secret.
    pub key_pem: String,
    /// The CA certificate alone, PEM: what a verifier adds to its trust anchors.
    pub ca_pem: String,
}

impl LocalIdentity {
    /// An ECDSA P-256 CA and end-entity certificate, valid for ten years from now, with the
    /// key usage C2PA requires of a claim signer (digital signature; e-mail protection EKU).
    pub fn generate(organisation: &str) -> Result<Self, LabelError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType,
            ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
            PKCS_ECDSA_P256_SHA256,
        };
        let err = |e: rcgen::Error| LabelError::Credentials(e.to_string());
        let now = std::time::SystemTime::now();
        let until = now + std::time::Duration::from_secs(10 * 365 * 86_400);

        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, format!("{organisation} labelling CA"));
        ca.distinguished_name
            .push(DnType::OrganizationName, organisation);
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = now.into();
        ca.not_after = until.into();
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;

        let ee_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut ee = CertificateParams::default();
        ee.distinguished_name = DistinguishedName::new();
        ee.distinguished_name
            .push(DnType::CommonName, format!("{organisation} content labels"));
        ee.distinguished_name
            .push(DnType::OrganizationName, organisation);
        ee.is_ca = IsCa::ExplicitNoCa;
        ee.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        ee.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
        ee.use_authority_key_identifier_extension = true;
        ee.not_before = now.into();
        ee.not_after = until.into();
        let issuer = Issuer::new(ca, ca_key);
        let ee_cert = ee.signed_by(&ee_key, &issuer).map_err(err)?;

        Ok(Self {
            chain_pem: format!("{}{}", ee_cert.pem(), ca_cert.pem()),
            key_pem: ee_key.serialize_pem(),
            ca_pem: ca_cert.pem(),
        })
    }
}

/// The version of the C2PA SDK this build validates and signs with.
pub const C2PA_SDK_VERSION: &str = c2pa::VERSION;
