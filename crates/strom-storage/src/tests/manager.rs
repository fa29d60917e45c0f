use super::*;
use crate::{LogManager, CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT};

#[test]
fn manager_lists_partitions_and_tracks_clean_shutdown() {
    let root = tempfile::tempdir().expect("tempdir");
    let (manager, found) = LogManager::open(root.path().to_path_buf()).expect("open");
    assert!(found.is_empty());
    assert!(!manager.had_clean_shutdown());

    let a = TopicPartition::new("my-topic", 0);
    let b = TopicPartition::new("my-topic", 1);
    let mut log_a = manager.open_log(a.clone(), small_config()).expect("open a");
    let mut log_b = manager.open_log(b.clone(), small_config()).expect("open b");
    for i in 0..20 {
        append_simple(&mut log_a, 3, i);
    }
    append_simple(&mut log_b, 1, 1);
    log_a.delete_records_before(7).expect("delete records");
    let (rp_a, ls_a) = (log_a.log_end_offset(), log_a.log_start_offset());
    log_a.close().expect("close");
    log_b.close().expect("close");
    manager.write_checkpoints([(a.clone(), rp_a, ls_a), (b.clone(), 1, 0)].into_iter()).expect("checkpoints");
    manager.mark_clean_shutdown().expect("mark");
    assert!(root.path().join(CLEAN_SHUTDOWN_FILE).exists());
    let text = std::fs::read_to_string(root.path().join(RECOVERY_POINT_CHECKPOINT)).expect("read");
    assert_eq!(text, format!("0\n2\nmy-topic 0 {rp_a}\nmy-topic 1 1\n"));
    assert!(root.path().join(LOG_START_OFFSET_CHECKPOINT).exists());
    drop(manager);

    std::fs::create_dir(root.path().join("not a partition")).expect("mkdir");
    let (manager, found) = LogManager::open(root.path().to_path_buf()).expect("reopen");
    assert!(manager.had_clean_shutdown());
    assert!(!root.path().join(CLEAN_SHUTDOWN_FILE).exists(), "marker consumed at open");
    let names: Vec<TopicPartition> = found.iter().map(|(tp, _)| tp.clone()).collect();
    assert_eq!(names, vec![a.clone(), b.clone()]);
    let log_a = manager.open_log(a.clone(), small_config()).expect("open a");
    assert_eq!(log_a.log_start_offset(), ls_a);
    assert_eq!(log_a.log_end_offset(), rp_a);
    assert_eq!(log_a.load_summary().segments_recovered, 0);
    drop(log_a);
    drop(manager);

    // No marker this time: an unclean start recovers from the recovery point.
    let (manager, _) = LogManager::open(root.path().to_path_buf()).expect("reopen");
    assert!(!manager.had_clean_shutdown());
    let log_a = manager.open_log(a, small_config()).expect("open a");
    assert!(!log_a.load_summary().clean_shutdown);
    assert_eq!(log_a.log_end_offset(), rp_a);
}

#[test]
fn corrupt_checkpoint_means_full_recovery_not_failure() {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(root.path().join(RECOVERY_POINT_CHECKPOINT), "garbage").expect("write");
    let (manager, _) = LogManager::open(root.path().to_path_buf()).expect("open despite bad checkpoint");
    let log = manager.open_log(TopicPartition::new("t", 0), LogConfig::default()).expect("open log");
    assert_eq!(log.recovery_point(), 0);
}

#[test]
fn delete_removes_the_partition_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    append_simple(&mut log, 1, 1);
    let dir = log.dir().to_path_buf();
    assert!(dir.exists());
    log.delete().expect("delete");
    assert!(!dir.exists());
}
