//! `Scanner` end to end on real files, in one test binary: the "no shortcuts" properties
//! (`invariance`), the verdict policy with each kind of provenance label (`provenance`), and
//! the recordings the detector must refuse to judge (`unfit`).

mod image;
mod invariance;
mod provenance;
mod unfit;
