"""extract.py against a small repository made here: a glob with exclusions, a list, labels
that live in a folder's name earlier in the history, a WebP named .png, duplicates, and an
LFS pointer."""

import csv
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import extract  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 24
WEBP = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 16
LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n"


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                          env=env).stdout.decode()


def write(repo, path, data):
    full = os.path.join(repo, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)


class ExtractTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = self.tmp.name
        work = os.path.join(root, "work")
        os.makedirs(work)
        git(work, "init", "-q")
        # First commit: the generator is in the folder names.
        write(work, "images/dalle-3/cats/dalle_img_1.png", PNG + b"a")
        write(work, "images/sd-3/cats/sd3_img_1.png", WEBP + b"b")
        write(work, "photos/one.jpg", JPEG + b"c")
        write(work, "photos/two.jpg", JPEG + b"c")  # the same bytes as one.jpg
        write(work, "photos/skip-me.jpg", JPEG + b"d")
        write(work, "photos/pointer.jpg", LFS)
        git(work, "add", "-A")
        git(work, "commit", "-qm", "first")
        # Then renamed so that the names no longer say it.
        git(work, "mv", "images/dalle-3/cats/dalle_img_1.png", "images/img_1.png")
        git(work, "mv", "images/sd-3/cats/sd3_img_1.png", "images/img_2.png")
        git(work, "commit", "-qm", "renamed")
        self.commit = git(work, "rev-parse", "HEAD").strip()
        self.mirrors = os.path.join(root, "mirrors")
        os.makedirs(os.path.join(self.mirrors, "someone+pics"))
        subprocess.run(["git", "clone", "-q", "--bare", work,
                        os.path.join(self.mirrors, "someone+pics", "repo")], check=True)
        self.out = os.path.join(root, "out")

    def tearDown(self):
        self.tmp.cleanup()

    def row(self, **kw):
        row = {"id": "x", "repo": "someone/pics", "commit": self.commit, "select": "",
               "label": "ai", "generator": "g", "family": "f", "content": "art",
               "licence": "l", "evidence": "e"}
        row.update(kw)
        return row

    def test_sources_are_taken_by_glob_history_and_once_each(self):
        sources = [
            self.row(id="d3", select="history:images/*.png|^images/dalle-3/",
                     generator="DALL-E 3"),
            self.row(id="sd3", select="history:images/*.png|^images/sd-3/",
                     generator="SD3", content="people=img_2;else=art"),
            self.row(id="cam", select="glob:photos/*.jpg|!*skip-me*", label="real",
                     content="scenes"),
        ]
        lines = extract.extract(sources, self.mirrors, self.out)
        by_source = {}
        for line in lines:
            by_source.setdefault(line["source"], []).append(line)
        self.assertEqual([l["path"] for l in by_source["d3"]], ["images/img_1.png"])
        self.assertEqual([l["path"] for l in by_source["sd3"]], ["images/img_2.png"])
        # WebP under .png: the format comes from the bytes.
        self.assertEqual(by_source["sd3"][0]["format"], "webp")
        self.assertTrue(by_source["sd3"][0]["file"].endswith(".webp"))
        self.assertEqual(by_source["sd3"][0]["content"], "people")
        self.assertEqual(by_source["d3"][0]["content"], "art")
        # Two paths, one content: taken once; the excluded file and the LFS pointer not at all.
        self.assertEqual(len(by_source["cam"]), 1)
        with open(os.path.join(self.out, "raw.tsv"), encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        self.assertEqual(len(rows), 3)
        for r in rows:
            with open(os.path.join(self.out, "raw", r["file"]), "rb") as f:
                self.assertEqual(len(f.read()), int(r["bytes"]))

    def test_a_mirror_left_as_a_git_folder_is_read_too(self):
        # fetch leaves some snapshots as `repo/.git` rather than a bare `repo`.
        bare = os.path.join(self.mirrors, "someone+pics", "repo")
        os.rename(bare, bare + ".bare")
        os.makedirs(bare)
        os.rename(bare + ".bare", os.path.join(bare, ".git"))
        lines = extract.extract(
            [self.row(id="cam", select="glob:photos/*.jpg|!*skip-me*", label="real")],
            self.mirrors, self.out)
        self.assertEqual([l["path"] for l in lines], ["photos/one.jpg"])

    def test_the_registry_is_checked(self):
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
            f.write("# comment\n" + "\t".join(extract.COLUMNS) + "\n")
            f.write("\t".join(self.row(commit="main").values()) + "\n")
        with self.assertRaisesRegex(ValueError, "not pinned"):
            extract.read_sources(f.name)
        os.unlink(f.name)
        with self.assertRaisesRegex(ValueError, "not a tag"):
            extract.content_tag("cats=cat;else=art", "x")
        with self.assertRaisesRegex(ValueError, "no else"):
            extract.content_tag("people=girl", "x")

    def test_the_shipped_registry_reads(self):
        rows = extract.read_sources(os.path.join(extract.HERE, "sources.tsv"))
        self.assertGreaterEqual(len(rows), 10)
        self.assertEqual({r["label"] for r in rows}, {"ai", "real"})
        for r in rows:
            if r["select"].startswith("list:"):
                self.assertTrue(extract.read_list(r["select"][5:]))


if __name__ == "__main__":
    unittest.main()
