//! A randomized test against a plain `Vec` model: appends, reads, restarts (clean and crashed,
//! with torn tails), retention and truncation, checking that the log always returns exactly the
//! records the model holds. A tiny deterministic PRNG keeps it dependency-free and reproducible.

use std::fs::OpenOptions;

use super::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn check_against_model(log: &Log, model: &[(i64, Vec<u8>)], rng: &mut Rng) {
    assert_eq!(log.log_end_offset(), model.len() as i64);
    let start = log.log_start_offset();
    assert_eq!(read_all(log, start), model[start as usize..].to_vec());
    if log.log_end_offset() > start {
        let offset = start + rng.below((log.log_end_offset() - start) as u64) as i64;
        let got = records_of(&log.read(offset, 1, i64::MAX).expect("read").records);
        assert!(got.iter().any(|(o, _)| *o == offset), "batch read at {offset} holds it");
    }
}

fn run(seed: u64) {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { segment_bytes: 1500, index_interval_bytes: 200, retention_ms: -1, ..LogConfig::default() };
    let mut rng = Rng(seed);
    let mut log = open_log(root.path(), config.clone(), 0, true);
    let mut model: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut log_start = 0;
    for step in 0..200 {
        match rng.below(20) {
            0..=11 => {
                let n = 1 + rng.below(6) as usize;
                let tag = format!("s{seed}-{step}");
                let info = append(&mut log, tagged_batch(&tag, n, step), step);
                assert_eq!(info.base_offset, model.len() as i64);
                for i in 0..n {
                    model.push((model.len() as i64, format!("{tag}-{i}").into_bytes()));
                }
            }
            12 | 13 => {
                log.close().expect("close");
                log = Log::open(log_dir(root.path()), tp(), config.clone(), 0, log_start, true).expect("open");
                assert_eq!(log.load_summary().segments_recovered, 0);
            }
            14 | 15 => {
                // Crash: maybe tear the tail, losing the last batch of the model too.
                let rp = log.recovery_point();
                let last =
                    log.dir().join(format!("{:020}.log", log.segment_base_offsets().last().copied().unwrap_or(0)));
                drop(log);
                let len = std::fs::metadata(&last).expect("stat").len();
                let tear = len > 0 && rng.below(2) == 0;
                if tear {
                    let cut = 1 + rng.below(len.min(40));
                    OpenOptions::new().write(true).open(&last).expect("open").set_len(len - cut).expect("cut");
                }
                log = Log::open(log_dir(root.path()), tp(), config.clone(), rp, log_start, false).expect("recover");
                let leo = log.log_end_offset();
                if tear {
                    assert!(leo < model.len() as i64, "a torn tail loses at least one batch");
                } else {
                    assert_eq!(leo, model.len() as i64, "a crash without damage loses nothing");
                }
                model.truncate(leo as usize);
                log_start = log.log_start_offset();
            }
            16 => {
                if log.log_end_offset() > log_start {
                    let target = log_start + rng.below((log.log_end_offset() - log_start) as u64) as i64;
                    log_start = log.delete_records_before(target).expect("delete records");
                    assert_eq!(log_start, target);
                }
            }
            17 => {
                log.flush().expect("flush");
            }
            18 => {
                let limit = 500 + rng.below(3000) as i64;
                log.set_config(LogConfig { retention_bytes: limit, ..config.clone() });
                log_start = log.apply_retention(step).expect("retention").log_start_offset;
                log.set_config(config.clone());
            }
            _ => {
                if log.log_end_offset() > log_start {
                    let target = log_start + rng.below((log.log_end_offset() - log_start + 1) as u64) as i64;
                    log.truncate_to(target).expect("truncate");
                    model.truncate(log.log_end_offset() as usize);
                    assert!(log.log_end_offset() <= target);
                }
            }
        }
        check_against_model(&log, &model, &mut rng);
    }
}

#[test]
fn log_behaves_like_a_vec_under_random_operations() {
    for seed in 1..=16u64 {
        run(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
}
