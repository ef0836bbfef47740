//! `/v1/voiceprints`: enrol a person's voice from known-genuine recordings, list, look at and
//! delete voiceprints. With API keys, each key sees, uses and deletes only its own; without
//! them (a server on loopback for one user) the machine's user sees all, as the CLI does.

use super::{AppState, Caller, bad_request, blocking, error, internal};
use aqiqat_scan::EnrolError;
use aqiqat_voiceprints::{Owner, VoiceprintError};
use axum::Json;
use axum::extract::{Extension, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Recordings one enrolment may send.
pub const MAX_FILES: usize = 20;

pub(super) fn owner(caller: &Caller) -> Owner {
    match &caller.0 {
        Some(key) => Owner::Key(key.clone()),
        None => Owner::Local,
    }
}

pub(super) fn voiceprint_error(e: VoiceprintError) -> Response {
    match e {
        VoiceprintError::NotFound(_) => error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        VoiceprintError::NameTaken(_) => error(StatusCode::CONFLICT, "conflict", e.to_string()),
        VoiceprintError::Ambiguous(_) | VoiceprintError::BadName(_) => bad_request(e.to_string()),
        other => internal(other.to_string()),
    }
}

fn enrol_error(e: EnrolError) -> Response {
    if e.is_bad_input() {
        let code = match &e {
            EnrolError::Unfit { code, .. } => code.as_str(),
            EnrolError::TooLittleSpeech { .. } => "too_little_speech",
            _ => "bad_input",
        };
        let mut r = error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_input",
            format!("{e}; nothing was enrolled"),
        );
        r.headers_mut().insert(
            "x-aqiqat-reason",
            axum::http::HeaderValue::from_static(code),
        );
        r
    } else {
        internal(e.to_string())
    }
}

/// `POST /v1/voiceprints`: a `multipart/form-data` form with `name`, optional `note`, and one
/// or more `file` parts (recordings of that person alone, at least 10 s of speech in all).
pub(super) async fn enrol(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !content_type.starts_with("multipart/form-data") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_input",
            "send the recordings as multipart/form-data: `name`, optional `note`, and `file` parts",
        );
    }
    let limit = s.0.limits.max_input_bytes;
    let read = async {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|e| error(e.status(), "bad_input", e.body_text()))?;
        let (mut name, mut note) = (None, None);
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut total = 0u64;
        while let Some(mut field) = form
            .next_field()
            .await
            .map_err(|e| error(e.status(), "bad_input", e.body_text()))?
        {
            let field_name = field.name().unwrap_or_default().to_owned();
            match field_name.as_str() {
                "file" => {
                    if files.len() == MAX_FILES {
                        return Err(bad_request(format!(
                            "at most {MAX_FILES} recordings per enrolment"
                        )));
                    }
                    let label = field
                        .file_name()
                        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or_default().to_owned())
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| format!("recording {}", files.len() + 1));
                    let label = super::clean_text("file name", Some(label))?.unwrap_or_default();
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field
                        .chunk()
                        .await
                        .map_err(|e| error(e.status(), "bad_input", e.body_text()))?
                    {
                        total += chunk.len() as u64;
                        if total > limit {
                            return Err(super::too_large(limit));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    if bytes.is_empty() {
                        return Err(bad_request(format!("{label}: the file is empty")));
                    }
                    files.push((label, bytes));
                }
                "name" | "note" => {
                    let is_name = field_name == "name";
                    let text = field
                        .text()
                        .await
                        .map_err(|e| error(e.status(), "bad_input", e.body_text()))?;
                    let text = super::clean_text(&field_name, Some(text))?;
                    if is_name {
                        name = text;
                    } else {
                        note = text;
                    }
                }
                other => {
                    return Err(bad_request(format!(
                        "unexpected form field {other:?}; send `name`, `note` and `file` parts"
                    )));
                }
            }
        }
        let name = name.ok_or_else(|| bad_request("the form has no `name`"))?;
        if files.is_empty() {
            return Err(bad_request("the form has no `file` part"));
        }
        Ok::<_, Response>((name, note, files))
    };
    let (name, note, files) = match super::within_upload_time(&s, limit, read).await {
        Ok(form) => form,
        Err(r) => return r,
    };
    let owner = owner(&caller);
    let scanner = std::sync::Arc::clone(&s.0.scanner);
    let store = std::sync::Arc::clone(&s.0.voiceprints);
    let done = tokio::task::spawn_blocking(move || {
        let recordings = files
            .into_iter()
            .map(|(label, bytes)| crate::Recording::Bytes(label, bytes))
            .collect();
        match crate::enrol(
            &scanner,
            &store,
            &owner,
            &name,
            note.as_deref(),
            recordings,
            |_| {},
        ) {
            Ok(enrolled) => Ok((
                enrolled.summary,
                enrolled
                    .synthetic
                    .iter()
                    .map(|n| {
                        format!(
                            "{n}: the synthetic-speech check calls this recording synthetic; \
                             enrol only recordings you know to be genuine"
                        )
                    })
                    .collect::<Vec<_>>(),
            )),
            Err(crate::EnrolFailure::Recording(e)) => Err(enrol_error(e)),
            Err(crate::EnrolFailure::Store(e)) => Err(voiceprint_error(e)),
        }
    })
    .await;
    match done {
        Ok(Ok((summary, warnings))) => {
            let location = format!("/v1/voiceprints/{}", summary.id);
            let mut body = serde_json::to_value(&summary).expect("summaries serialise");
            body["warnings"] = json!(warnings);
            (
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(body),
            )
                .into_response()
        }
        Ok(Err(r)) => r,
        Err(e) => internal(e.to_string()),
    }
}

/// Runs `f` on the voiceprint store, off the executor's duty (the PostgreSQL client blocks).
fn with_store<T>(s: &AppState, f: impl FnOnce(&mut aqiqat_voiceprints::VoiceprintStore) -> T) -> T {
    blocking(|| f(&mut s.0.voiceprints.lock().unwrap_or_else(|p| p.into_inner())))
}

/// `GET /v1/voiceprints`: the caller's voiceprints, never the vectors.
pub(super) async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let owner = owner(&caller);
    match with_store(&s, |store| store.list(&owner)) {
        Ok(all) => Json(json!({ "voiceprints": all })).into_response(),
        Err(e) => voiceprint_error(e),
    }
}

/// `GET /v1/voiceprints/{id}`.
pub(super) async fn get(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let owner = owner(&caller);
    match with_store(&s, |store| store.get(&owner, &id)) {
        Ok(v) => Json(v.summary).into_response(),
        Err(e) => voiceprint_error(e),
    }
}

/// `DELETE /v1/voiceprints/{id}`: gone for good (`204`).
pub(super) async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let owner = owner(&caller);
    match with_store(&s, |store| store.delete(&owner, &id)) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => voiceprint_error(e),
    }
}

/// The voiceprint a scan or a call names, for `caller` (`404` when it is not theirs).
pub(super) fn claimed_voice(
    s: &AppState,
    caller: &Caller,
    name_or_id: &str,
) -> Result<aqiqat_scan::ClaimedVoice, Response> {
    let owner = owner(caller);
    with_store(s, |store| store.get(&owner, name_or_id))
        .map(crate::claimed_voice)
        .map_err(voiceprint_error)
}

/// [`claimed_voice`]'s id: what a job keeps.
pub(super) fn resolve(s: &AppState, caller: &Caller, name_or_id: &str) -> Result<String, Response> {
    claimed_voice(s, caller, name_or_id).map(|v| v.id)
}
