"""The voice source registry: one TOML file per public source under tools/voice-data/sources/.

A source says where its audio comes from (a repository at a commit, a Debian package at a
version, or a generator run here), under which licence, and how each file's label, system,
speaker, language and channel are read from the source's own folder and file names, with the
page text that backs the reading (`evidence`). The corpus builder (corpus.py) reads nothing else.

    [[source]]
    id = "grad-tts-demo"                 # the page: the unit of leave-one-page-out
    repo = "grad-tts/grad-tts.github.io" # or "debian:PKG=VERSION", or "generated:NAME"
    commit = "<40 hex>"                  # git; for Debian the .deb's sha256 goes in `sha256`
    licence = "…"
    page = "index.html"
    languages = ["en"]
    kind = "demo-page"
    [[source.rule]]
    path = '^assets/mos/\\d+_(?P<sys>taco2|glow-tts)\\.wav$'   # re.fullmatch on the path
    label = "spoof"
    system = "{sys}"                     # templates read the path's named groups
    family = "acoustic-tts"
    speaker = "lj"
    language = "en"
    channel = "clean"
    evidence = "index.html rows 'Tacotron2', 'Glow-TTS' …"
    clips = 6                            # what the rule matched when it was written
    [source.rule.system_map]             # optional: group value -> system; others left out
    taco2 = "tacotron2"

Optional per source: `exclude` (paths never taken), `exclude_speakers`, `split` (pin the whole
source to one split when its speakers cannot be told apart), `sha256` (packages),
`[source.speaker_map]` (a key the rules make -> the reader's key, for readers identified later,
e.g. on another page that names the same recording: one reader, one key, one split).
"""

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The shared data folder beside the checkout, as CI places it: its README names the reserved
# sources.
SHARED_VOICE = HERE.parents[2] / "shared/data/voice"
REGISTRY = HERE / "sources"
LABELS = ("bonafide", "spoof")
SPLITS = ("train", "dev", "test")
KINDS = ("demo-page", "sample-folder", "test-audio", "package", "generated", "dataset")
# The recording or transmission condition a detector hears ("device": a phone or laptop in an
# ordinary room). Speaking style (read, emotional,
# conversational) is a separate column: it is not something augmentation can give a spoof.
CHANNELS = ("clean", "noisy", "reverberant", "phone", "messenger", "broadcast", "enhanced",
            "compressed", "device")
# The Resemblyzer folders that are the public test set, never training data.
RESERVED_FOLDERS = {"resemble-ai/Resemblyzer": ("audio_data/librispeech_test-other/",
                                                "audio_data/donald_trump/")}


class RegistryError(ValueError):
    pass


def run(main, script):
    """Runs a command-line tool's `main`; a registry error ends it with one line that names the
    tool and the faulty entry, not a traceback."""
    try:
        main()
    except RegistryError as e:
        sys.exit(f"{Path(script).name}: {e}")


@dataclass
class Rule:
    path: re.Pattern
    label: str
    system: str
    family: str
    speaker: str
    language: str
    channel: str
    evidence: str
    style: str = "read"
    system_map: dict = field(default_factory=dict)
    clips: int | None = None

    def classify(self, rel):
        """The row this rule makes of a repository-relative path, or None."""
        m = self.path.fullmatch(rel)
        if not m:
            return None
        groups = {k: v or "" for k, v in m.groupdict().items()}
        system = self.system.format(**groups)
        if self.system_map:
            if system not in self.system_map:
                return None
            system = self.system_map[system]
        return dict(label=self.label, system=system, family=self.family.format(**groups),
                    speaker=self.speaker.format(**groups), language=self.language.format(**groups),
                    channel=self.channel, style=self.style)


@dataclass
class Source:
    id: str
    repo: str
    commit: str
    licence: str
    page: str
    languages: list
    kind: str
    rules: list
    file: Path
    notes: str = ""
    exclude: frozenset = frozenset()
    exclude_speakers: frozenset = frozenset()
    split: str | None = None
    sha256: str | None = None
    options: dict = field(default_factory=dict)
    speaker_map: dict = field(default_factory=dict)

    @property
    def origin(self):
        """'git', 'debian' or 'generated'."""
        if self.repo.startswith("debian:"):
            return "debian"
        if self.repo.startswith("generated:"):
            return "generated"
        return "git"

    def classify(self, rel):
        if rel in self.exclude:
            return None
        for reserved in RESERVED_FOLDERS.get(self.repo, ()):
            if rel.startswith(reserved):
                return None
        for rule in self.rules:
            row = rule.classify(rel)
            if row is not None:
                row["speaker"] = self.speaker_map.get(row["speaker"], row["speaker"])
                if row["speaker"] in self.exclude_speakers:
                    return None
                return row
        return None


def _require(entry, key, where, kind=str):
    if key not in entry:
        raise RegistryError(f"{where}: `{key}` is missing")
    value = entry[key]
    if not isinstance(value, kind):
        raise RegistryError(f"{where}: `{key}` must be {kind.__name__}")
    return value


def reserved_repositories(shared_readme):
    """Owner/name of every repository the shared README reserves for independent evaluation."""
    if not shared_readme.exists():
        # Without the list nothing could be refused: a build must not go on unchecked.
        raise RegistryError(f"{shared_readme}: not found; it names the reserved sources "
                            "(place ../shared beside the checkout, or pass --shared)")
    text = shared_readme.read_text(encoding="utf-8")
    section = text.split("## Reserved", 1)[-1] if "## Reserved" in text else ""
    found = set(re.findall(r"\b([A-Za-z0-9][\w.-]*/[\w.-]*[\w])\b", section))
    # Resemblyzer is reserved only in the two folders named there (RESERVED_FOLDERS).
    found.discard("resemble-ai/Resemblyzer")
    return {r for r in found if not r.startswith(("audio_data", "librispeech"))}


def parse_source(entry, file):
    where = f"{file.name}: source {entry.get('id', '?')}"
    sid = _require(entry, "id", where)
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", sid):
        raise RegistryError(f"{where}: id must be lower-case letters, digits, '.', '-'")
    repo = _require(entry, "repo", where)
    commit = str(entry.get("commit", ""))
    kind = _require(entry, "kind", where)
    if kind not in KINDS:
        raise RegistryError(f"{where}: kind {kind!r} is not one of {KINDS}")
    if repo.startswith("debian:"):
        if not re.fullmatch(r"debian:[a-z0-9.+-]+=[\w.+:~-]+", repo):
            raise RegistryError(f"{where}: a Debian source is debian:PACKAGE=VERSION")
        if not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", ""))):
            raise RegistryError(f"{where}: a Debian source pins its .deb with `sha256`")
    elif repo.startswith("generated:"):
        pass
    else:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
            raise RegistryError(f"{where}: repo must be owner/name")
        if not re.fullmatch(r"[0-9a-f]{40}", commit):
            raise RegistryError(f"{where}: a repository source pins a 40-hex commit")
    rules = []
    for i, r in enumerate(entry.get("rule", [])):
        rw = f"{where} rule {i + 1}"
        label = _require(r, "label", rw)
        if label not in LABELS:
            raise RegistryError(f"{rw}: label must be one of {LABELS}")
        channel = _require(r, "channel", rw)
        if channel not in CHANNELS:
            raise RegistryError(f"{rw}: channel {channel!r} is not one of {CHANNELS}")
        system = _require(r, "system", rw)
        if label == "bonafide" and system != "human":
            raise RegistryError(f"{rw}: a bonafide rule's system is 'human'")
        if label == "spoof" and system == "human":
            raise RegistryError(f"{rw}: a spoof rule names the system that made it")
        evidence = _require(r, "evidence", rw)
        if len(evidence.strip()) < 10:
            raise RegistryError(f"{rw}: evidence must quote what backs the label")
        try:
            pattern = re.compile(_require(r, "path", rw))
        except re.error as e:
            raise RegistryError(f"{rw}: path is not a regular expression: {e}") from e
        rules.append(Rule(path=pattern, label=label, system=system,
                          family=_require(r, "family", rw), speaker=_require(r, "speaker", rw),
                          language=_require(r, "language", rw), channel=channel,
                          evidence=evidence, style=r.get("style", "read"),
                          system_map=dict(r.get("system_map", {})), clips=r.get("clips")))
    if not rules and not repo.startswith("generated:"):
        raise RegistryError(f"{where}: no rules")
    split = entry.get("split")
    if split is not None and split not in SPLITS:
        raise RegistryError(f"{where}: split must be one of {SPLITS}")
    known = {"id", "repo", "commit", "licence", "page", "languages", "kind", "rule", "notes",
             "exclude", "exclude_speakers", "split", "sha256", "size_mb", "options", "speaker_map"}
    unknown = set(entry) - known
    if unknown:
        raise RegistryError(f"{where}: unknown keys {sorted(unknown)}")
    speaker_map = dict(entry.get("speaker_map", {}))
    if not all(isinstance(v, str) and v for v in speaker_map.values()):
        raise RegistryError(f"{where}: speaker_map maps keys to reader keys (strings)")
    return Source(id=sid, repo=repo, commit=commit, licence=_require(entry, "licence", where),
                  page=_require(entry, "page", where), languages=list(entry.get("languages", [])),
                  kind=kind, rules=rules, file=file, notes=entry.get("notes", ""),
                  exclude=frozenset(entry.get("exclude", [])),
                  exclude_speakers=frozenset(entry.get("exclude_speakers", [])),
                  split=split, sha256=entry.get("sha256"), options=dict(entry.get("options", {})),
                  speaker_map=speaker_map)


def load(folder=REGISTRY, reserved=frozenset()):
    """Every source in the registry, checked: ids unique, nothing reserved, rules well formed."""
    sources = []
    for file in sorted(Path(folder).glob("*.toml")):
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise RegistryError(f"{file.name}: {e}") from e
        for entry in data.get("source", []):
            sources.append(parse_source(entry, file))
    seen = {}
    for s in sources:
        if s.id in seen:
            raise RegistryError(f"source id {s.id!r} is in {seen[s.id].name} and {s.file.name}")
        seen[s.id] = s.file
        if s.repo.lower() in {r.lower() for r in reserved}:
            raise RegistryError(f"{s.file.name}: {s.repo} is reserved for independent evaluation")
    return sources
