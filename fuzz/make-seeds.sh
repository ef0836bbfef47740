#!/usr/bin/env bash
# Writes the seed corpus: 0.3 s of a synthetic voiced signal in every format intake reads.
# Everything is generated here from ffmpeg's lavfi; nothing comes from data sets. AMR gets its
# magic only: mutation grows frames from it.
set -euo pipefail
cd "$(dirname "$0")"
out=seeds/intake
mkdir -p "$out"
src=$(mktemp --suffix=.wav)
trap 'rm -f "$src"' EXIT
ffmpeg -v error -y -f lavfi \
  -i "aevalsrc=0.3*sin(2*PI*(150+20*sin(2*PI*5*t))*t)*(0.6+0.4*sin(2*PI*4*t))|0.2*sin(2*PI*300*t):s=16000:d=0.3" "$src"
enc() { name=$1; shift; ffmpeg -v error -y -i "$src" "$@" "$out/$name"; }
enc mulaw.wav -ar 8000 -ac 1 -c:a pcm_mulaw
enc alaw.wav -ar 8000 -ac 1 -c:a pcm_alaw
enc s16.wav -ar 8000 -ac 2 -c:a pcm_s16le
enc a.aiff -ar 8000 -c:a pcm_s16be
enc a.flac -ar 8000 -c:a flac
enc a.mp3 -ar 8000 -c:a libmp3lame -b:a 16k
enc a.ogg -ar 8000 -ac 1 -c:a libvorbis
enc a.opus -c:a libopus -b:a 8k
enc a.m4a -ar 8000 -c:a aac -b:a 16k -movflags +faststart
enc a.aac -c:a aac -b:a 16k -f adts
enc a.webm -c:a libopus -b:a 8k
printf '#!AMR\n' > "$out/header.amr"
