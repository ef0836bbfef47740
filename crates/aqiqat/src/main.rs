//! # aqiqat (binary)
//!
//! Argument parsing and wiring only: each subcommand calls into a library crate and turns its
//! result into text, JSON and an exit code. Nothing here is worth testing on its own except
//! through the command line itself (`tests/e2e/`).
//!
//! Exit codes, the same for every subcommand: `0` success, `2` bad input or usage (the message
//! names the file and the problem), `1` internal error.

mod bulk;
mod commands;
mod evidence;
mod label;
mod reports;
mod scan;
mod voiceprint;

use aqiqat_intake::{IntakeError, Limits, MediaFacts};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "aqiqat",
    version,
    about = "Detects synthetic and cloned voices, and keeps verifiable evidence of what was analysed.",
    long_about = None,
)]
struct Cli {
    /// Where keys and the evidence log live (default: $AQIQAT_DATA_DIR, else
    /// $XDG_DATA_HOME/aqiqat, else ~/.local/share/aqiqat).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the evidence log, jobs and API keys in this PostgreSQL database
    /// (postgres://USER:PASSWORD@HOST:PORT/DB) instead of SQLite files in the data directory;
    /// keys and uploads stay in the data directory.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "AQIQAT_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode files completely and print their media facts: container, codec, sample rate,
    /// channels, decoded duration, bitrate and the SHA-256 of the exact bytes.
    Probe {
        /// Audio or video files (WAV, FLAC, MP3, Ogg Vorbis/Opus, M4A/AAC, MP4/MOV/WebM/MKV, AMR).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object per file on stdout (JSON Lines); failures become `{"path", "error"}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Decode one file the way the analysers hear it: mono, resampled, streamed in bounded
    /// memory. Optionally writes the result as a 32-bit float WAV.
    Decode {
        file: PathBuf,
        /// Output sample rate in Hz (16000 for analysis, 8000 for telephony).
        #[arg(long, default_value_t = aqiqat_intake::DEFAULT_SAMPLE_RATE)]
        rate: u32,
        /// Write the decoded audio here (WAV, 32-bit float, mono).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Judge whether the speech in a recording is synthetic (text-to-speech, voice conversion,
    /// vocoder output) or human: a verdict, a calibrated probability and a timeline of 4 s
    /// windows. Silence-only or too-short input is answered "inconclusive", with the reason.
    Scan {
        /// Audio files, videos whose audio track is judged, or images (PNG, JPEG, WebP, GIF,
        /// HEIF/AVIF); folders too (their media files; with --recursive, their subfolders').
        /// Every input's provenance is read: Content Credentials (embedded, or a `.c2pa`
        /// sidecar of the same name), metadata markers, the SD watermark. More than one input
        /// (or a folder) scans on every core, one result per line. Or one link (http/https):
        /// to a media file, or to a post whose media is found from the page's OpenGraph tags
        /// and <video>/<audio> elements, else by yt-dlp when installed; every item of a post
        /// is scanned, one result each.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Print the whole result as one JSON object (one per line for several inputs).
        #[arg(long)]
        json: bool,
        /// Scan the subfolders of folders given.
        #[arg(long)]
        recursive: bool,
        /// Inputs scanned at once (default: every core).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Append one JSON line per input to this file as each finishes (the result, or the
        /// error for a bad input).
        #[arg(long, value_name = "OUT.jsonl")]
        jsonl: Option<PathBuf>,
        /// Sign and log every result, and write each record to this folder as SHA256.json.
        #[arg(long, value_name = "DIR", conflicts_with = "record")]
        record_dir: Option<PathBuf>,
        /// Skip inputs whose SHA-256 already has a line in the --jsonl file.
        #[arg(long, requires = "jsonl")]
        resume: bool,
        /// Follow links into private networks (loopback, 10/8, 192.168/16…): for tests and
        /// closed deployments. Without it such links are refused, whatever DNS says.
        #[arg(long)]
        allow_private_urls: bool,
        /// The most seconds a link may take: the page, yt-dlp and every media item together.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        link_timeout: u64,
        /// Root certificates (PEM) whose Content Credentials signers you trust, e.g. the
        /// C2PA trust list. Without it a valid label is reported `valid`, never `trusted`.
        #[arg(long, value_name = "PEM", env = "AQIQAT_C2PA_TRUST_ANCHORS")]
        trust_anchors: Option<PathBuf>,
        /// Sign the result, append it to the evidence log, and write the record with its
        /// inclusion proof and the signed tree head to this file (`aqiqat verify` reads it).
        /// A post with several media items gets one record each: OUT-1.json, OUT-2.json…
        #[arg(long, value_name = "OUT.json")]
        record: Option<PathBuf>,
        /// File the record under this case (see `aqiqat case new`).
        #[arg(long, value_name = "CASE")]
        case: Option<String>,
        /// Who ran the scan, as the record should name them.
        #[arg(long)]
        operator: Option<String>,
        /// Free text kept in the signed record.
        #[arg(long)]
        note: Option<String>,
        /// Also check whether the voice is this enrolled person's (`aqiqat voiceprint enrol`),
        /// and join that with the synthetic-speech verdict: a clone of the person, consistent
        /// with the person, or not the person.
        #[arg(long, value_name = "NAME")]
        claimed: Option<String>,
        /// Judge voices with this detector instead of the built-in one: a training run's
        /// folder or a fused card (see `serve --model`); results and records name it.
        #[arg(long, value_name = "DIR|CARD")]
        model: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Enrol, list and delete voiceprints: the voices `scan --claimed` compares with.
    #[command(subcommand)]
    Voiceprint(voiceprint::VoiceprintCommand),
    /// Sign AI-generated content with C2PA Content Credentials declaring it AI-generated
    /// (`digitalSourceType: trainedAlgorithmicMedia`, a `c2pa.created` action naming the
    /// generator). Without --key/--cert, this installation's own labelling certificate
    /// (made on first use under <data-dir>/keys/label/) signs.
    Label(label::LabelArgs),
    /// Check an evidence record offline: its signature, its inclusion in the log against a
    /// signed tree head, and (with --media) that the file is the one analysed. Exit 0 when
    /// every check holds, 3 when one fails.
    Verify {
        /// The file `scan --record`, `log proof` or `case export` wrote.
        record: PathBuf,
        /// The media file the record should describe.
        #[arg(long)]
        media: Option<PathBuf>,
        /// A signed tree head obtained separately (e.g. published by the log's operator);
        /// the record's proof must lead to its root.
        #[arg(long, value_name = "HEAD.json")]
        tree_head: Option<PathBuf>,
        /// The public key to trust (PEM, as `aqiqat key export` writes it).
        #[arg(long, value_name = "KEY")]
        pubkey: Option<PathBuf>,
        /// Print the checks as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// A human-readable report of a record or a case, in Kazakh, Russian or English, as HTML
    /// or PDF: the verdict in plain words, the timeline, hashes, signatures, and what the
    /// scores mean and do not mean.
    Report {
        /// A record file (as `scan --record` writes it: no store needed), a log index or a
        /// leaf-hash prefix.
        #[arg(required_unless_present = "case", conflicts_with = "case")]
        record: Option<String>,
        /// Report on a whole case instead.
        #[arg(long)]
        case: Option<String>,
        /// kk, ru or en.
        #[arg(long, default_value = "en")]
        lang: aqiqat_report::Lang,
        /// html or pdf.
        #[arg(long, default_value = "html")]
        format: reports::Format,
        /// Write here (required for PDF); HTML goes to stdout otherwise.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Serve the HTTP API: upload a recording, get a job, poll its verdict, fetch the signed
    /// record and the report. Binds to localhost unless told otherwise.
    Serve {
        /// Address to listen on (port 0 picks a free port; the chosen one is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Scanning threads (default: the number of cores).
        #[arg(long)]
        workers: Option<usize>,
        /// Where uploads wait for a worker: a number (this process's workers, that many
        /// uploads waiting at most; beyond that the API answers 503 with Retry-After), or
        /// `nats://HOST:PORT` (a NATS JetStream work queue that `aqiqat worker` processes on
        /// any machine pull from; needs --database-url postgres://…).
        #[arg(long, value_name = "N | nats://HOST:PORT", default_value = "64")]
        queue: String,
        #[command(flatten)]
        nats: NatsArgs,
        /// Largest upload accepted, in bytes (an upload is held in memory while it arrives).
        #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
        max_upload: u64,
        /// Refuse audio longer than this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().max_duration_s)]
        max_duration: f64,
        /// Seconds a client has to send its request headers (slow clients are cut off).
        #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
        header_timeout: f64,
        /// Seconds of slack an upload gets on top of arriving at 64 kB/s; slower ones are cut off.
        #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
        body_timeout: f64,
        /// Another name this server is reached by (a reverse proxy's, the local network's);
        /// repeatable. Requests addressed to any name but localhost, the loopback and listening
        /// addresses and these are refused, so that no website can rebind its own name to this
        /// server and read it (docs/security.md).
        #[arg(
            long = "allowed-host",
            value_name = "NAME",
            env = "AQIQAT_ALLOWED_HOSTS",
            value_delimiter = ','
        )]
        allowed_hosts: Vec<String>,
        /// A web app's origin (e.g. https://fraud-desk.example) whose pages may call the API
        /// from a browser; repeatable. It gets CORS answers. Without it, uploads and changes
        /// from other sites' pages are refused and no CORS header is sent.
        #[arg(
            long = "allowed-origin",
            value_name = "ORIGIN",
            env = "AQIQAT_ALLOWED_ORIGINS",
            value_delimiter = ','
        )]
        allowed_origins: Vec<String>,
        /// Follow links sent to `POST /v1/scans` into private networks (loopback, 10/8,
        /// 192.168/16…): for tests and closed deployments.
        #[arg(long)]
        allow_private_urls: bool,
        /// The most seconds a link sent to the API may take: page, yt-dlp and media together.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        link_timeout: u64,
        /// Also post live calls' verdicts (Twilio protocol: start, each change of the rolling
        /// verdict, speaker checks, the final verdict) as JSON to this URL.
        #[arg(long, value_name = "URL")]
        call_webhook: Option<String>,
        /// Run this voice detector instead of the built-in one, for uploads and live calls: a
        /// training run's folder (`voice-tdnn-mfm.safetensors` and `.json`) or a fused card
        /// that `aqiqat-train fuse` wrote beside its members; weights must match their cards.
        /// Results, records and call messages name the model that judged.
        #[arg(long, value_name = "DIR|CARD")]
        model: Option<PathBuf>,
    },
    /// Scan jobs from a NATS JetStream work queue that `aqiqat serve --queue nats://…` fills:
    /// any number of workers, on any machine reaching NATS and the PostgreSQL database. Each
    /// job's record goes into the shared evidence log once, however often it is delivered.
    Worker {
        /// The NATS server (`nats://HOST:PORT`, several comma-separated for a cluster).
        #[arg(long, value_name = "nats://HOST:PORT")]
        queue: String,
        /// Jobs scanned at once (default: the number of cores).
        #[arg(long)]
        workers: Option<usize>,
        #[command(flatten)]
        nats: NatsArgs,
        /// Refuse audio longer than this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().max_duration_s)]
        max_duration: f64,
        /// Run this voice detector instead of the built-in one (see `serve --model`); give the
        /// servers the same.
        #[arg(long, value_name = "DIR|CARD")]
        model: Option<PathBuf>,
    },
    /// A Telegram bot: people forward a voice message, audio, video or video note and get
    /// the verdict back in Kazakh, Russian or English, with its signed record (`/report ID`,
    /// `/record ID`). Long polling, or a webhook with `--webhook URL --listen ADDR`; the
    /// token comes from a file or AQIQAT_TELEGRAM_TOKEN, never the command line.
    Telegram {
        /// A file holding the bot's token (from @BotFather).
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
        /// The Bot API server: a self-hosted one lifts the 20 MB download limit.
        #[arg(long, value_name = "URL", default_value = aqiqat_telegram::TELEGRAM_API)]
        api_url: String,
        /// The largest file downloaded, in bytes (the official Bot API serves at most 20 MB).
        #[arg(long, value_name = "BYTES", default_value_t = 20 << 20)]
        max_download: u64,
        /// Seconds each long poll waits for updates.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        poll: u64,
        /// Files one user may have checked per minute; beyond it a polite "wait a minute".
        #[arg(long, value_name = "N", default_value_t = 10)]
        rate: u32,
        /// Files waiting in one batch of updates beyond which the rest are answered "busy,
        /// try again in a minute".
        #[arg(long, value_name = "N", default_value_t = 32)]
        queue: usize,
        /// Receive updates by webhook at this public https:// address (a reverse proxy that
        /// terminates TLS and forwards to --listen) instead of long polling.
        #[arg(long, value_name = "URL", requires = "listen")]
        webhook: Option<String>,
        /// The local address the webhook is served on.
        #[arg(long, value_name = "ADDR", requires = "webhook")]
        listen: Option<std::net::SocketAddr>,
    },
    /// API keys for `aqiqat serve` (needed once one exists, or when serving beyond loopback).
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// The installation's signing key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The append-only evidence log: tree heads, proofs, integrity.
    #[command(subcommand)]
    Log(LogCommand),
    /// Cases: records grouped by incident, exported as self-contained bundles.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Measure the detector on a labelled manifest: a tab-separated file whose header names
    /// at least `path` and `label` (`bonafide` or `spoof`), paths relative to the manifest.
    /// Prints EER, AUC, accuracy at the shipped thresholds and per-generator figures.
    Eval {
        manifest: PathBuf,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Draw the ROC curve into this PNG file.
        #[arg(long, value_name = "PNG")]
        plot: Option<PathBuf>,
        /// Parallel decoders/scorers (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Measure these weights instead of the built-in ones: a folder holding
        /// `voice-tdnn-mfm.safetensors` and `voice-tdnn-mfm.json` as `aqiqat-train` writes
        /// them (a candidate is measured before it ships; leave-one-out runs are measured so),
        /// or a fused card file that `aqiqat-train fuse` wrote beside its members.
        #[arg(long, value_name = "DIR|CARD")]
        model: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Make a key; it is printed once and stored only as a hash.
    Create {
        /// Who or what will use it (a bank's system, a newsroom).
        name: String,
        /// Requests per minute allowed with this key.
        #[arg(long, default_value_t = 600)]
        rate: u32,
    },
    /// List keys (ids and names; secrets are not kept).
    List,
    /// Revoke a key by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Print (or write) the public key as PEM, for others to pin.
    Export {
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Print the key id (SHA-256 of the raw public key) and where the key lives.
    Show,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Sign (or reuse) the tree head for the log as it is now.
    Head {
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// A record (log index, leaf-hash prefix or record file) with a fresh inclusion proof
    /// against the current tree head.
    Proof {
        record: String,
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Proof that the log of an earlier tree head is a prefix of the log now.
    Consistency {
        /// The earlier tree head.
        old: PathBuf,
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Check that a newer tree head extends an older one, offline.
    VerifyConsistency {
        old: PathBuf,
        new: PathBuf,
        proof: PathBuf,
        #[arg(long, value_name = "KEY")]
        pubkey: Option<PathBuf>,
    },
    /// Recompute the whole tree from the stored records and compare it with every stored
    /// node and signed tree head.
    Check {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CaseCommand {
    /// Open a case; prints its id.
    New {
        title: String,
        /// Choose the id (letters, digits, '-', '_', '.'); default case-N.
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// File records under a case: log indices, leaf-hash prefixes or record files.
    Add {
        case: String,
        #[arg(required = true)]
        records: Vec<String>,
    },
    /// Show a case and its records.
    Show {
        case: String,
        #[arg(long)]
        json: bool,
    },
    /// List the cases.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Write a self-contained bundle: every record with its proof, one signed tree head,
    /// the public key, reports, and a README on verifying it with or without aqiqat.
    Export {
        case: String,
        /// The folder to create (it must not exist yet).
        #[arg(long, short)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct LimitArgs {
    /// Refuse audio longer than this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().max_duration_s)]
    max_duration: f64,
    /// Refuse files larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_input_bytes)]
    max_bytes: u64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_duration_s: self.max_duration,
            max_input_bytes: self.max_bytes,
            ..Limits::default()
        }
    }
}

/// The worst outcome across all files decides the exit code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    Ok = 0,
    BadInput = 2,
    /// `verify`: the evidence was read, and a check failed.
    Verification = 3,
    Internal = 1,
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `aqiqat scan … | head` would die in println! with a panic;
    // like every Unix tool, end quietly when the reader has gone.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AQIQAT_LOG")
                .unwrap_or_else(|_| "warn,symphonia=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // Decoder panics on hostile input are caught and reported as bad input by intake; the
    // default hook would still print a backtrace for them, so panics go to the log instead.
    std::panic::set_hook(Box::new(|info| tracing::debug!("panic: {info}")));
    let cli = parse_cli();
    let data_dir = cli.data_dir;
    if let Some(url) = cli.database_url.as_deref().filter(|u| !u.trim().is_empty()) {
        match aqiqat_store::Location::parse(url) {
            Ok(location) => evidence::use_database(location),
            Err(e) => {
                eprintln!("error: --database-url: {e}");
                std::process::exit(Outcome::BadInput as i32);
            }
        }
    }
    let outcome = std::panic::catch_unwind(move || match cli.command {
        Command::Probe {
            files,
            json,
            limits,
        } => probe(&files, json, &limits.limits()),
        Command::Decode {
            file,
            rate,
            out,
            json,
            limits,
        } => decode(&file, rate, out.as_deref(), json, &limits.limits()),
        Command::Scan {
            paths,
            json,
            recursive,
            jobs,
            jsonl,
            record_dir,
            resume,
            allow_private_urls,
            link_timeout,
            trust_anchors,
            record,
            case,
            operator,
            note,
            claimed,
            model,
            limits,
        } => {
            // Anything written as a URL is a link (and a scheme other than http(s) is refused
            // as such, not looked for as a file).
            let is_link = |p: &PathBuf| {
                let p = p.to_string_lossy();
                p.split_once("://").is_some_and(|(scheme, _)| {
                    !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
                })
            };
            let context = aqiqat_evidence::Context {
                case_id: case,
                operator,
                note,
            };
            let bulk = paths.len() > 1
                || paths[0].is_dir()
                || recursive
                || jobs.is_some()
                || jsonl.is_some()
                || record_dir.is_some();
            let link = paths.iter().any(is_link);
            if link && bulk {
                eprintln!(
                    "error: a link is scanned on its own: one link per command, without \
                     --jobs, --jsonl or --record-dir"
                );
                Outcome::BadInput
            } else if bulk && record.is_some() {
                eprintln!("error: --record takes one file; for several, use --record-dir DIR");
                Outcome::BadInput
            } else if !bulk && record.is_none() && context != aqiqat_evidence::Context::default() {
                eprintln!("error: --case, --operator and --note go into a record: add --record");
                Outcome::BadInput
            } else if bulk {
                scan::bulk(
                    bulk::BulkArgs {
                        paths,
                        recursive,
                        jobs,
                        jsonl,
                        record_dir,
                        resume,
                        context,
                        data_dir: data_dir.clone(),
                    },
                    json,
                    claimed.as_deref(),
                    trust_anchors.as_deref(),
                    model.as_deref(),
                    limits.limits(),
                )
            } else {
                let url = paths[0].to_string_lossy().into_owned();
                let input = if link {
                    scan::Input::Link {
                        url: &url,
                        allow_private: allow_private_urls,
                        timeout: std::time::Duration::from_secs(link_timeout),
                    }
                } else {
                    scan::Input::File(&paths[0])
                };
                scan::scan(
                    input,
                    json,
                    claimed.as_deref(),
                    data_dir.as_deref(),
                    trust_anchors.as_deref(),
                    model.as_deref(),
                    limits.limits(),
                    record.map(|out| evidence::RecordRequest {
                        out,
                        context,
                        data_dir: data_dir.clone(),
                    }),
                )
            }
        }
        Command::Verify {
            record,
            media,
            tree_head,
            pubkey,
            json,
        } => evidence::verify(evidence::VerifyArgs {
            record: &record,
            media: media.as_deref(),
            tree_head: tree_head.as_deref(),
            pubkey: pubkey.as_deref(),
            json,
        }),
        Command::Report {
            record,
            case,
            lang,
            format,
            out,
        } => reports::report(reports::ReportArgs {
            record: record.as_deref(),
            case: case.as_deref(),
            lang,
            format,
            out: out.as_deref(),
            data_dir: data_dir.as_deref(),
        }),
        Command::Serve {
            addr,
            workers,
            queue,
            nats,
            max_upload,
            max_duration,
            header_timeout,
            body_timeout,
            allowed_hosts,
            allowed_origins,
            allow_private_urls,
            link_timeout,
            call_webhook,
            model,
        } => {
            let (queue, nats) = match queue.trim() {
                url if url.starts_with("nats://") || url.starts_with("tls://") => {
                    (64, Some(nats.settings(url)))
                }
                n => match n.parse::<usize>() {
                    Ok(n) => (n, None),
                    Err(_) => {
                        eprintln!("error: --queue {n:?}: give a number or a nats:// URL");
                        std::process::exit(Outcome::BadInput as i32);
                    }
                },
            };
            serve(
                data_dir.as_deref(),
                ServeArgs {
                    addr,
                    workers,
                    queue,
                    nats,
                    limits: Limits {
                        max_input_bytes: max_upload,
                        max_duration_s: max_duration,
                        ..Limits::default()
                    },
                    header_timeout: std::time::Duration::from_secs_f64(
                        header_timeout.clamp(0.1, 3600.0),
                    ),
                    body_timeout: std::time::Duration::from_secs_f64(
                        body_timeout.clamp(0.1, 3600.0),
                    ),
                    allowed_hosts,
                    allowed_origins,
                    links: aqiqat_server::LinkSettings {
                        allow_private: allow_private_urls,
                        timeout: std::time::Duration::from_secs(link_timeout),
                    },
                    call_webhook,
                    model,
                },
            )
        }
        Command::Worker {
            queue,
            workers,
            nats,
            max_duration,
            model,
        } => worker(
            data_dir.as_deref(),
            &queue,
            workers,
            nats,
            max_duration,
            model,
        ),
        Command::Telegram {
            token_file,
            api_url,
            max_download,
            poll,
            rate,
            queue,
            webhook,
            listen,
        } => telegram(
            data_dir.as_deref(),
            token_file.as_deref(),
            &api_url,
            aqiqat_telegram::Settings {
                max_download,
                poll_s: poll,
                per_user_per_minute: rate,
                queue,
            },
            webhook
                .zip(listen)
                .map(|(url, listen)| aqiqat_telegram::Webhook { url, listen }),
        ),
        Command::Voiceprint(cmd) => voiceprint::run(data_dir.as_deref(), cmd, Limits::default()),
        Command::Label(args) => label::run(data_dir.as_deref(), args),
        Command::ApiKey(cmd) => commands::api_key(data_dir.as_deref(), cmd),
        Command::Key(cmd) => commands::key(data_dir.as_deref(), cmd),
        Command::Log(cmd) => commands::log(data_dir.as_deref(), cmd),
        Command::Case(cmd) => commands::case(data_dir.as_deref(), cmd),
        Command::Eval {
            manifest,
            json,
            plot,
            jobs,
            model,
            limits,
        } => scan::eval(
            &manifest,
            json,
            plot.as_deref(),
            jobs,
            model.as_deref(),
            limits.limits(),
        ),
    });
    let outcome = outcome.unwrap_or_else(|_| {
        eprintln!("internal error: aqiqat crashed; rerun with AQIQAT_LOG=debug for details");
        Outcome::Internal
    });
    ExitCode::from(outcome as u8)
}

/// Parses the command line; `--version` also names the commit and every embedded model with
/// the SHA-256 of its weights, so a report can be tied to the exact binary that wrote it.
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    if std::env::args_os().any(|a| a == "--version" || a == "-V") {
        // Printed once, then the process exits: leaking it is how clap takes a computed text.
        let text: &'static str = Box::leak(long_version().into_boxed_str());
        command = command.long_version(text).version(text);
    }
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
}

fn long_version() -> String {
    let mut text = format!(
        "{} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("AQIQAT_GIT_COMMIT")
    );
    for model in aqiqat_voice::detector::embedded_models() {
        text.push_str(&format!(
            "\nmodel {} {} sha256 {}",
            model.name, model.version, model.weights_sha256
        ));
    }
    text
}

/// How the NATS work queue is set up (serve and worker must agree).
#[derive(clap::Args, Clone, Copy)]
struct NatsArgs {
    /// With a NATS queue: jobs that may wait at most; beyond that uploads get 503.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    queue_size: usize,
    /// With a NATS queue: seconds before a job whose worker went silent is delivered again.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    ack_wait: f64,
    /// With a NATS queue: deliveries before a failing job is given up on and marked failed.
    #[arg(long, value_name = "N", default_value_t = 4)]
    max_deliver: i64,
    /// With a NATS queue: copies of the job stream across the NATS cluster (3 on three nodes).
    #[arg(long, value_name = "N", default_value_t = 1)]
    queue_replicas: usize,
}

impl NatsArgs {
    fn settings(self, url: &str) -> aqiqat_server::queue::QueueSettings {
        aqiqat_server::queue::QueueSettings {
            url: url.to_owned(),
            capacity: self.queue_size.max(1),
            ack_wait: std::time::Duration::from_secs_f64(self.ack_wait.clamp(0.5, 3600.0)),
            max_deliver: self.max_deliver.max(1),
            replicas: self.queue_replicas.clamp(1, 5),
        }
    }
}

struct ServeArgs {
    addr: std::net::SocketAddr,
    workers: Option<usize>,
    queue: usize,
    nats: Option<aqiqat_server::queue::QueueSettings>,
    limits: Limits,
    header_timeout: std::time::Duration,
    body_timeout: std::time::Duration,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    links: aqiqat_server::LinkSettings,
    call_webhook: Option<String>,
    model: Option<PathBuf>,
}

/// A `--model` that cannot be loaded stops a server or worker before it listens or pulls a job.
fn check_model(model: Option<&std::path::Path>) -> Result<(), Outcome> {
    model.map_or(Ok(()), |path| scan::load_model(path).map(drop))
}

fn serve(data_dir: Option<&std::path::Path>, args: ServeArgs) -> Outcome {
    let ServeArgs {
        addr,
        workers,
        queue,
        nats,
        limits,
        header_timeout,
        body_timeout,
        allowed_hosts,
        allowed_origins,
        links,
        call_webhook,
        model,
    } = args;
    // A mistyped --allowed-host or --allowed-origin is the user's to fix, not a crash.
    if let Err(e) = aqiqat_server::guard::HostPolicy::new(addr.ip(), &allowed_hosts)
        .and(aqiqat_server::guard::OriginPolicy::new(&allowed_origins))
    {
        eprintln!("error: {e}");
        return Outcome::BadInput;
    }
    if let Err(o) = check_model(model.as_deref()) {
        return o;
    }
    let data_dir = match evidence::data_dir(data_dir) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let workers =
        workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = match runtime() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let config = aqiqat_server::Config {
        addr,
        data_dir,
        database: evidence::database().cloned(),
        workers,
        queue,
        limits,
        header_timeout,
        body_timeout,
        allowed_hosts,
        allowed_origins,
        nats,
        links,
        call_webhook,
        voice_model: model,
    };
    match runtime.block_on(aqiqat_server::serve(config)) {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::Internal
        }
    }
}

/// `aqiqat telegram`: the bot, until it is stopped.
fn telegram(
    data_dir: Option<&std::path::Path>,
    token_file: Option<&std::path::Path>,
    api_url: &str,
    settings: aqiqat_telegram::Settings,
    webhook: Option<aqiqat_telegram::Webhook>,
) -> Outcome {
    let token = match token_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => t.trim().to_owned(),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return Outcome::BadInput;
            }
        },
        None => std::env::var("AQIQAT_TELEGRAM_TOKEN").unwrap_or_default(),
    };
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c == '/') {
        eprintln!(
            "error: no usable bot token: give --token-file PATH or set AQIQAT_TELEGRAM_TOKEN"
        );
        return Outcome::BadInput;
    }
    if let Some(Err(e)) = webhook.as_ref().map(aqiqat_telegram::Webhook::route) {
        eprintln!("error: {e}");
        return Outcome::BadInput;
    }
    let data_dir = match evidence::data_dir(data_dir) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let log = match evidence::open_log(&data_dir) {
        Ok(l) => l,
        Err(o) => return o,
    };
    let store = match aqiqat_telegram::BotStore::open(&data_dir, evidence::database()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the bot's store: {e}");
            return Outcome::Internal;
        }
    };
    let scanner = match aqiqat_scan::Scanner::embedded(Limits::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("internal error: the built-in detector cannot be loaded: {e}");
            return Outcome::Internal;
        }
    };
    let api = aqiqat_telegram::BotApi::new(api_url, token);
    let mut bot = aqiqat_telegram::Bot::new(api, scanner, log, store, settings);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let outcome = match webhook {
        Some(hook) => aqiqat_telegram::webhook::serve(bot, &hook, &stop),
        None => {
            eprintln!("aqiqat telegram bot polling {api_url}");
            bot.run(&stop)
        }
    };
    match outcome {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::Internal
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Outcome> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("internal error: {e}");
            Outcome::Internal
        })
}

fn worker(
    data_dir: Option<&std::path::Path>,
    queue: &str,
    workers: Option<usize>,
    nats: NatsArgs,
    max_duration: f64,
    model: Option<PathBuf>,
) -> Outcome {
    if let Err(o) = check_model(model.as_deref()) {
        return o;
    }
    let data_dir = match evidence::data_dir(data_dir) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let Some(database) = evidence::database().cloned() else {
        eprintln!("error: a worker needs --database-url postgres://…, the servers' database");
        return Outcome::BadInput;
    };
    let config = aqiqat_server::remote::WorkerConfig {
        data_dir,
        database,
        queue: nats.settings(queue.trim()),
        workers: workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        limits: Limits {
            max_duration_s: max_duration,
            ..Limits::default()
        },
        voice_model: model,
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(o) => return o,
    };
    match runtime.block_on(aqiqat_server::remote::run_worker(config)) {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::Internal
        }
    }
}

fn probe(files: &[PathBuf], json: bool, limits: &Limits) -> Outcome {
    let mut worst = Outcome::Ok;
    let stdout = std::io::stdout();
    for path in files {
        let result = aqiqat_intake::probe(path, limits);
        let mut out = stdout.lock();
        let written = match &result {
            Ok(facts) if json => writeln!(out, "{}", to_json(facts)),
            Ok(facts) => write_facts(&mut out, facts),
            Err(err) => {
                eprintln!("error: {err}");
                if json {
                    writeln!(out, "{}", error_json(err))
                } else {
                    Ok(())
                }
            }
        };
        if written.is_err() {
            // stdout closed (e.g. piped into `head`): nothing more can be reported.
            return worst.max(Outcome::Internal);
        }
        worst = worst.max(match &result {
            Ok(_) => Outcome::Ok,
            Err(e) if e.is_bad_input() => Outcome::BadInput,
            Err(_) => Outcome::Internal,
        });
    }
    worst
}

fn decode(
    path: &std::path::Path,
    rate: u32,
    out: Option<&std::path::Path>,
    json: bool,
    limits: &Limits,
) -> Outcome {
    if !(1_000..=192_000).contains(&rate) {
        eprintln!("error: --rate {rate}: choose a rate between 1000 and 192000 Hz");
        return Outcome::BadInput;
    }
    let result = (|| -> Result<(u64, f64, u64), Failure> {
        let mut stream = aqiqat_intake::AudioStream::open(path, rate, limits)?;
        let mut writer = match out {
            Some(target) => Some(
                hound::WavWriter::create(
                    target,
                    hound::WavSpec {
                        channels: 1,
                        sample_rate: rate,
                        bits_per_sample: 32,
                        sample_format: hound::SampleFormat::Float,
                    },
                )
                .map_err(|e| Failure::Output(format!("{}: {e}", target.display())))?,
            ),
            None => None,
        };
        let mut samples = 0u64;
        while let Some(chunk) = stream.next_chunk()? {
            samples += chunk.len() as u64;
            if let Some(w) = writer.as_mut() {
                for &s in chunk {
                    w.write_sample(s)
                        .map_err(|e| Failure::Output(e.to_string()))?;
                }
            }
        }
        if let Some(w) = writer {
            w.finalize().map_err(|e| Failure::Output(e.to_string()))?;
        }
        Ok((
            samples,
            samples as f64 / f64::from(rate),
            stream.decode_errors(),
        ))
    })();
    match result {
        Ok((samples, duration_s, decode_errors)) => {
            if json {
                let summary = serde_json::json!({
                    "path": path.display().to_string(),
                    "sample_rate": rate,
                    "samples": samples,
                    "duration_s": duration_s,
                    "decode_errors": decode_errors,
                });
                println!("{summary}");
            } else {
                println!(
                    "{}: {samples} samples, {duration_s:.3} s of mono audio at {rate} Hz",
                    path.display()
                );
            }
            Outcome::Ok
        }
        Err(Failure::Intake(err)) => {
            eprintln!("error: {err}");
            if json {
                println!("{}", error_json(&err));
            }
            if err.is_bad_input() {
                Outcome::BadInput
            } else {
                Outcome::Internal
            }
        }
        Err(Failure::Output(msg)) => {
            eprintln!("error: cannot write output: {msg}");
            Outcome::Internal
        }
    }
}

enum Failure {
    Intake(IntakeError),
    Output(String),
}

impl From<IntakeError> for Failure {
    fn from(err: IntakeError) -> Self {
        Failure::Intake(err)
    }
}

fn to_json(facts: &MediaFacts) -> String {
    serde_json::to_string(facts).expect("media facts serialise")
}

pub(crate) fn error_json(err: &IntakeError) -> serde_json::Value {
    serde_json::json!({
        "path": err.path.display().to_string(),
        "error": {
            "kind": if err.is_bad_input() { "bad_input" } else { "internal" },
            "code": err.problem.code(),
            "message": err.to_string(),
        }
    })
}

fn write_facts(out: &mut impl Write, f: &MediaFacts) -> std::io::Result<()> {
    writeln!(out, "{}", f.path)?;
    writeln!(out, "  container    {}", f.container)?;
    let bits = f
        .bits_per_sample
        .map(|b| format!(", {b}-bit"))
        .unwrap_or_default();
    writeln!(out, "  codec        {}{bits}", f.codec)?;
    writeln!(
        out,
        "  audio        {} Hz, {} channel{}",
        f.sample_rate,
        f.channels,
        if f.channels == 1 { "" } else { "s" }
    )?;
    let declared = f
        .declared_duration_s
        .map(|d| format!(" (header declares {d:.3} s)"))
        .unwrap_or_default();
    writeln!(out, "  duration     {:.3} s{declared}", f.duration_s)?;
    writeln!(out, "  bitrate      {} kbit/s", f.bitrate_bps / 1000)?;
    writeln!(out, "  size         {} bytes", f.size_bytes)?;
    writeln!(out, "  sha256       {}", f.sha256)?;
    if f.decode_errors > 0 {
        writeln!(
            out,
            "  warning      {} damaged packets skipped",
            f.decode_errors
        )?;
    }
    Ok(())
}
