# Shell functions shared by folds.sh and v2.sh: copying finished run outputs into the
# repository (runs/voice-v2/) and back on a new machine. Sourced, not run.
#
# Tables keep their paths relative to the corpus, so that a corpus rebuilt under another
# folder restores them; every copy lands under a temporary name first, so that an interrupted
# copy is never mistaken for a finished one.

# keep_table TSV GZ PREFIX: TSV gzipped into GZ, PREFIX cut from column 1 (after the header).
keep_table() {
    awk -v p="$3" 'BEGIN { FS = OFS = "\t" } NR > 1 && index($1, p) == 1 { $1 = substr($1, length(p) + 1) } 1' \
        "$1" | gzip -9n >"$2.part"
    mv "$2.part" "$2"
}

# restore_table GZ TSV PREFIX: the inverse of keep_table.
restore_table() {
    gzip -dc "$1" | awk -v p="$3" 'BEGIN { FS = OFS = "\t" } NR > 1 { $1 = p $1 } 1' >"$2.part"
    mv "$2.part" "$2"
}

# copy_network FROM TO: a network and its card (voice-tdnn-mfm.*), the card last, since its
# presence marks the copy finished.
copy_network() {
    mkdir -p "$2"
    cp "$1/voice-tdnn-mfm.safetensors" "$2/"
    cp "$1/voice-tdnn-mfm.json" "$2/voice-tdnn-mfm.json.part"
    mv "$2/voice-tdnn-mfm.json.part" "$2/voice-tdnn-mfm.json"
}

# keep_corpus_hashes CORPUS DIR: which corpus build a kept run was trained on (the clean and the
# channel-variant manifests' SHA-256), since the Opus variants differ between CPUs.
keep_corpus_hashes() {
    (cd "$1" && sha256sum manifest.tsv $([[ -f manifest_aug.tsv ]] && echo manifest_aug.tsv)) >"$2/corpus.sha256"
}
