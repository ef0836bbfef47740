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

# kept_for_corpus CORPUS DIR: whether the run kept in DIR was trained on this corpus build, by
# its clean manifest's SHA-256 (the channel variants' may differ between CPUs). A run kept
# before runs recorded their corpus (no corpus.sha256) is taken on trust.
kept_for_corpus() {
    [[ -f $2/corpus.sha256 ]] || return 0
    local kept now
    kept=$(awk '$2 == "manifest.tsv" { print $1 }' "$2/corpus.sha256")
    now=$(cd "$1" && sha256sum manifest.tsv | cut -d ' ' -f 1)
    [[ $kept == "$now" ]]
}

# refuse_other_corpus CORPUS DIR WHAT: stops the script when DIR holds a run of another corpus
# build, which restoring would pass off as this corpus's.
refuse_other_corpus() {
    if ! kept_for_corpus "$1" "$2"; then
        echo "$3: $2 was trained on another corpus build (its corpus.sha256); keep this run in another folder" >&2
        exit 3
    fi
}
