//! The web page in a real browser: Debian's Chromium, driven over WebDriver by chromedriver,
//! against the real server on loopback. A file is picked, the verdict appears in plain words,
//! the timeline is drawn, the language switches, and a screenshot is kept for a person to look
//! at (`target/web-page-*.png`).

use crate::common;

use common::{Server, agent, smoke_first};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Driver {
    base: String,
    session: String,
}

impl Driver {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r = match (method, body) {
            ("GET", _) => agent().get(&url).call(),
            ("DELETE", _) => agent().delete(&url).call(),
            (_, b) => agent()
                .post(&url)
                .header("Content-Type", "application/json")
                .send(b.unwrap_or(json!({})).to_string().as_bytes()),
        };
        let mut r = r.expect("chromedriver answers");
        let v: Value = serde_json::from_slice(
            &r.body_mut()
                .with_config()
                .limit(20 << 20)
                .read_to_vec()
                .unwrap(),
        )
        .unwrap();
        v["value"].clone()
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }

    fn wait_for(&self, js: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.script(js);
            if !v.is_null() && v != json!(false) && v != json!("") {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {js}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// "Check another" on the result, then a file chosen in the picker.
    fn scan_another(&self, file: &Path) {
        self.call(
            "POST",
            &format!("/element/{}/click", self.find("#again")),
            None,
        );
        let input = self.find("#file");
        self.call(
            "POST",
            &format!("/element/{input}/value"),
            Some(json!({"text": file.to_str().unwrap()})),
        );
    }

    fn displayed(&self, css: &str) -> bool {
        let id = self.find(css);
        self.call("GET", &format!("/element/{id}/displayed"), None) == json!(true)
    }

    fn screenshot(&self, to: &Path) -> Vec<u8> {
        use std::io::Write;
        let b64 = self.call("GET", "/screenshot", None);
        let bytes = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_str().unwrap())
                .unwrap()
        };
        std::fs::File::create(to)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        bytes
    }
}

#[test]
fn a_person_drops_a_file_and_reads_the_verdict_in_three_languages() {
    let dir = tempfile::tempdir().unwrap();
    // Links on loopback are the test's own pages.
    let server = Server::start(&dir.path().join("data"), &["--allow-private-urls"]);
    let base = server.base.clone();
    let port = free_port();
    let _driver = Kill(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: chromium-driver) is installed"),
    );
    let driver_base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while agent()
        .get(&format!("{driver_base}/status"))
        .call()
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = dir.path().join("chrome-profile");
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1000,1400", format!("--user-data-dir={}", profile.display())]}}}});
    let mut created = agent()
        .post(&format!("{driver_base}/session"))
        .header("Content-Type", "application/json")
        .send(caps.to_string().as_bytes())
        .unwrap();
    let created: Value =
        serde_json::from_slice(&created.body_mut().read_to_vec().unwrap()).unwrap();
    let session = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let d = Driver {
        base: driver_base,
        session,
    };

    d.call("POST", "/url", Some(json!({"url": format!("{base}/")})));
    d.wait_for("return document.querySelector('[data-t=lead]').textContent.length > 20");
    d.call(
        "POST",
        &format!("/element/{}/click", d.find("button[data-lang=en]")),
        None,
    );
    d.wait_for("return document.documentElement.lang === 'en' && document.querySelector('[data-t=pick]').textContent === 'choose a file'");
    assert!(d.displayed("#drop"));

    // Pick a file, as a person would with the file dialog.
    let clip = smoke_first("spoof").canonicalize().unwrap();
    let input = d.find("input[type=file]");
    d.call(
        "POST",
        &format!("/element/{input}/value"),
        Some(json!({"text": clip.to_str().unwrap()})),
    );
    let verdict = d.wait_for("const v = document.getElementById('verdict'); return document.getElementById('result').hidden ? '' : v.textContent;");
    let verdict = verdict.as_str().unwrap().to_owned();
    let code = d
        .script("return document.getElementById('verdict').dataset.verdict")
        .as_str()
        .unwrap()
        .to_owned();
    let expected = match code.as_str() {
        "synthetic" => "SYNTHETIC",
        "human" => "NO SIGN",
        _ => "INCONCLUSIVE",
    };
    assert!(verdict.contains(expected), "{verdict}");
    assert!(d.displayed("#verdict"));
    assert!(d.displayed("#timeline"));
    let bars = d
        .script("return document.querySelectorAll('#timeline rect').length")
        .as_u64()
        .unwrap();
    assert!(bars >= 1);
    let report = d
        .script("return document.getElementById('report').href")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(report.contains("/report?lang=en"), "{report}");
    // The link leads to a real report.
    let mut r = agent().get(&report).call().unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.body_mut()
            .read_to_string()
            .unwrap()
            .contains("Evidence report")
    );

    let shot = d.screenshot(&target_dir().join("web-page-en.png"));
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 20_000,
        "a blank page would be tiny"
    );

    // A labelled picture: the page shows the Content Credentials and the verdict they decide.
    let picture = dir.path().join("picture.png");
    std::fs::write(&picture, common::png_picture(3)).unwrap();
    let labelled = dir.path().join("labelled.png");
    let status = Command::new(env!("CARGO_BIN_EXE_aqiqat"))
        .args([
            "label",
            picture.to_str().unwrap(),
            "--out",
            labelled.to_str().unwrap(),
        ])
        .args(["--generator", "Acme ImageGen 3"])
        .env("AQIQAT_DATA_DIR", dir.path().join("label-data"))
        .status()
        .unwrap();
    assert!(status.success());
    d.scan_another(&labelled);
    let verdict = d.wait_for("const v = document.getElementById('verdict'); return document.getElementById('result').hidden || v.dataset.verdict !== 'synthetic' ? '' : v.textContent;");
    assert!(
        verdict.as_str().unwrap().contains("AI-GENERATED"),
        "{verdict}"
    );
    let provenance = d
        .script("return document.getElementById('provenance').innerText")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        provenance.contains("Content Credentials (C2PA)"),
        "{provenance}"
    );
    assert!(provenance.contains("present and intact"), "{provenance}");
    assert!(
        provenance.contains("trainedAlgorithmicMedia"),
        "{provenance}"
    );
    assert!(provenance.contains("Acme ImageGen 3"), "{provenance}");
    assert!(!d.displayed("#timeline"), "a picture has no timeline");
    d.screenshot(&target_dir().join("web-page-image-en.png"));

    // An unlabelled photo: the image detector's answer, and its heat map over the picture.
    let photo = dir.path().join("photo.png");
    std::fs::write(&photo, common::photo_png(320, 240)).unwrap();
    d.scan_another(&photo);
    let cells = d.wait_for("return document.getElementById('result').hidden || document.getElementById('image-part').hidden ? '' : String(document.querySelectorAll('#heatmap rect').length);");
    assert_eq!(
        cells, "300",
        "one square per 16-pixel cell of a 320×240 picture"
    );
    assert!(d.displayed("#heatmap"));
    assert_eq!(
        d.script("return document.querySelectorAll('#heatmap image').length"),
        1,
        "the squares lie over the uploaded picture"
    );
    let verdict = d
        .script("return document.getElementById('verdict').dataset.verdict")
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(verdict, "human", "a picture is never called real");
    let reason = d
        .script("return document.getElementById('image-reason').innerText")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        verdict == "synthetic" || reason.contains("not evidence that the image is real"),
        "{reason}"
    );
    assert_eq!(
        d.script(
            "return document.getElementById('probability').innerText + document.getElementById('reason').innerText"
        ),
        "",
        "the verdict box does not repeat the scan's English sentence"
    );
    d.screenshot(&target_dir().join("web-page-heatmap-en.png"));

    // Switch to Kazakh: the verdict is re-worded, the report link follows.
    d.call(
        "POST",
        &format!("/element/{}/click", d.find("button[data-lang=kk]")),
        None,
    );
    let kk = d.wait_for("const v = document.getElementById('verdict').textContent; return /[әғқңөұүһі]/i.test(v) ? v : '';");
    assert!(kk.as_str().unwrap().len() > 10);
    assert!(
        d.script("return document.getElementById('report').href")
            .as_str()
            .unwrap()
            .contains("lang=kk")
    );
    d.screenshot(&target_dir().join("web-page-kk.png"));
    d.call(
        "POST",
        &format!("/element/{}/click", d.find("button[data-lang=ru]")),
        None,
    );
    d.wait_for("return document.querySelector('[data-t=pick]').textContent === 'выберите файл'");

    // Compare with a voice you know: enrol one from known recordings on the page, pick it,
    // and read the joint answer about that person.
    d.call(
        "POST",
        &format!("/element/{}/click", d.find("button[data-lang=en]")),
        None,
    );
    d.wait_for("return document.documentElement.lang === 'en'");
    d.call(
        "POST",
        &format!("/element/{}/click", d.find("#compare summary")),
        None,
    );
    assert!(d.displayed("#enrol-name"));
    let manifest = std::fs::read_to_string(common::smoke_dir().join("smoke.tsv")).unwrap();
    let mut lj: Vec<PathBuf> = manifest
        .lines()
        .filter(|l| l.contains("\topenseq2seq-tacotron2-gst\tLJ-voice\t"))
        .map(|l| {
            common::smoke_dir()
                .join(l.split('\t').next().unwrap())
                .canonicalize()
                .unwrap()
        })
        .collect();
    lj.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    let name = d.find("#enrol-name");
    d.call(
        "POST",
        &format!("/element/{name}/value"),
        Some(json!({"text": "Aigerim"})),
    );
    let files: Vec<&str> = lj[..4].iter().map(|p| p.to_str().unwrap()).collect();
    let input = d.find("#enrol-files");
    d.call(
        "POST",
        &format!("/element/{input}/value"),
        Some(json!({"text": files.join("\n")})),
    );
    d.call(
        "POST",
        &format!("/element/{}/click", d.find("#enrol")),
        None,
    );
    let enrolled = d.wait_for("const s = document.getElementById('enrol-state'); return s.dataset.id ? s.textContent : '';");
    assert!(
        enrolled.as_str().unwrap().contains("Added Aigerim"),
        "{enrolled}"
    );
    let picked = d.wait_for("const c = document.getElementById('claimed'); return c.value && c.selectedOptions[0].textContent;");
    assert!(picked.as_str().unwrap().starts_with("Aigerim"), "{picked}");
    d.scan_another(&lj[4]);
    let claim = d.wait_for("const c = document.getElementById('claim'); return document.getElementById('claim-box').hidden ? '' : c.dataset.claim + ': ' + c.textContent;");
    let claim = claim.as_str().unwrap();
    assert!(claim.starts_with("clone_of_claimed: "), "{claim}");
    assert!(claim.contains("CLONE of Aigerim"), "{claim}");
    assert!(d.displayed("#claim-box"));
    d.screenshot(&target_dir().join("web-page-claim-en.png"));

    // Paste a link to a post with two media items: the page lists them and shows each.
    let one = std::fs::read(common::smoke(5)).unwrap();
    let two = std::fs::read(common::smoke(6)).unwrap();
    let post = "<html><head><meta property=\"og:audio\" content=\"/one.flac\"></head>\
        <body><audio src=\"/two.flac\"></audio></body></html>";
    let site = common::link_server(vec![
        ("/post", "text/html", post.as_bytes().to_vec()),
        ("/one.flac", "audio/flac", one),
        ("/two.flac", "audio/flac", two.clone()),
    ]);
    d.call(
        "POST",
        &format!("/element/{}/click", d.find("#again")),
        None,
    );
    d.script("document.getElementById('claimed').value = ''; return true;");
    let field = d.find("#link");
    d.call(
        "POST",
        &format!("/element/{field}/value"),
        Some(json!({"text": format!("{site}/post")})),
    );
    d.call(
        "POST",
        &format!("/element/{}/click", d.find("#link-go")),
        None,
    );
    d.wait_for("return !document.getElementById('result').hidden && document.querySelectorAll('#item-buttons button').length === 2");
    let link = d.script("return document.getElementById('f-link').textContent");
    assert_eq!(link.as_str().unwrap(), format!("{site}/post"));
    let media = d.script("return document.getElementById('f-media').textContent");
    assert!(
        media.as_str().unwrap().contains("/one.flac (item 1 of 2)"),
        "{media}"
    );
    d.call(
        "POST",
        &format!(
            "/element/{}/click",
            d.find("#item-buttons button:nth-child(2)")
        ),
        None,
    );
    let sha = d.wait_for("const m = document.getElementById('f-media').textContent; return !document.getElementById('result').hidden && m.includes('/two.flac') ? document.getElementById('f-sha').textContent : '';");
    assert_eq!(sha.as_str().unwrap(), common::sha256_hex(&two));
    d.screenshot(&target_dir().join("web-page-link-en.png"));
    d.call("DELETE", "", None);
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/web_page-… → target/
    let dir = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
