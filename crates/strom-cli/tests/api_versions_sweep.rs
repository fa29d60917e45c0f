//! Every version of every API that Strom advertises in ApiVersions answers a well-formed request
//! with a decodable response and no error. Clients pick the highest common version, so a version
//! that only fails when encoding (a field set that the version lacks) would otherwise surface only
//! with some client; this test asks each one.

#[path = "api_versions_sweep/groups.rs"]
mod groups;
mod support;

use strom_protocol::batch::testing::TestBatch;
use strom_protocol::messages::*;
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;
use support::raw::RawClient;
use support::TestBroker;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn metadata_request(topic: &str) -> MetadataRequest {
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(name(topic));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req
}

#[test]
fn every_advertised_version_of_every_api_answers() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let mut c = RawClient::connect(&broker.bootstrap());
    let versions: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    // A topic to work on, and its id for the versions that address topics by id.
    let md: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata_request("sweep"));
    assert_eq!(md.topics[0].error_code, 0);
    let topic_id = md.topics[0].topic_id;
    let mut partitions = 1;
    let mut checked = 0;
    for api in &versions.api_keys {
        let key = ApiKey::try_from(api.api_key).expect("known key");
        for v in api.min_version..=api.max_version {
            let label = format!("{key:?} v{v}");
            match key {
                ApiKey::ApiVersions => {
                    let r: ApiVersionsResponse = c.call(key, v, &ApiVersionsRequest::default());
                    assert_eq!(r.error_code, 0, "{label}");
                }
                ApiKey::Metadata => {
                    let r: MetadataResponse = c.call(key, v, &metadata_request("sweep"));
                    assert_eq!(r.topics.len(), 1, "{label}");
                    assert_eq!(r.topics[0].error_code, 0, "{label}");
                    assert_eq!(r.topics[0].partitions.len(), partitions, "{label}");
                }
                ApiKey::Produce => {
                    let batch = TestBatch { records: &[(Some(b"k"), Some(b"v"))], ..Default::default() }.encode();
                    let mut p = produce_request::PartitionProduceData::default();
                    p.records = Some(batch.into());
                    let mut t = produce_request::TopicProduceData::default();
                    t.name = name("sweep");
                    t.partition_data = vec![p];
                    let mut req = ProduceRequest::default();
                    req.acks = -1;
                    req.timeout_ms = 1000;
                    req.topic_data = vec![t];
                    let r: ProduceResponse = c.call(key, v, &req);
                    assert_eq!(r.responses[0].partition_responses[0].error_code, 0, "{label}");
                }
                ApiKey::Fetch => {
                    let mut p = fetch_request::FetchPartition::default();
                    p.partition_max_bytes = 1 << 20;
                    let mut t = fetch_request::FetchTopic::default();
                    if v >= 13 {
                        t.topic_id = topic_id;
                    } else {
                        t.topic = name("sweep");
                    }
                    t.partitions = vec![p];
                    let mut req = FetchRequest::default();
                    req.max_bytes = 1 << 20;
                    req.topics = vec![t];
                    let r: FetchResponse = c.call(key, v, &req);
                    let p = &r.responses[0].partitions[0];
                    assert_eq!(p.error_code, 0, "{label}");
                    assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()), "{label} returns data");
                }
                ApiKey::ListOffsets => {
                    let mut p = list_offsets_request::ListOffsetsPartition::default();
                    p.timestamp = -1;
                    let mut t = list_offsets_request::ListOffsetsTopic::default();
                    t.name = name("sweep");
                    t.partitions = vec![p];
                    let mut req = ListOffsetsRequest::default();
                    req.topics = vec![t];
                    let r: ListOffsetsResponse = c.call(key, v, &req);
                    let p = &r.topics[0].partitions[0];
                    assert_eq!(p.error_code, 0, "{label}");
                    assert!(p.offset > 0, "{label}");
                }
                ApiKey::OffsetForLeaderEpoch => {
                    let ask = |leader_epoch: i32, current: i32| {
                        let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
                        p.leader_epoch = leader_epoch;
                        p.current_leader_epoch = current;
                        let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
                        t.topic = name("sweep");
                        t.partitions = vec![p];
                        let mut req = OffsetForLeaderEpochRequest::default();
                        req.replica_id = BrokerId(-1);
                        req.topics = vec![t];
                        req
                    };
                    let r: OffsetForLeaderEpochResponse = c.call(key, v, &ask(0, 0));
                    let p = &r.topics[0].partitions[0];
                    assert_eq!((p.error_code, p.leader_epoch), (0, 0), "{label}");
                    assert!(p.end_offset > 0, "{label}: epoch 0 is the current one: it ends at the log end");
                    let r: OffsetForLeaderEpochResponse = c.call(key, v, &ask(0, 7));
                    assert_eq!(
                        r.topics[0].partitions[0].error_code,
                        ResponseError::UnknownLeaderEpoch.code(),
                        "{label}"
                    );
                }
                ApiKey::CreateTopics => {
                    let mut t = create_topics_request::CreatableTopic::default();
                    t.name = name(&format!("created-v{v}"));
                    t.num_partitions = 2;
                    t.replication_factor = 1;
                    let mut req = CreateTopicsRequest::default();
                    req.topics = vec![t];
                    req.timeout_ms = 1000;
                    let r: CreateTopicsResponse = c.call(key, v, &req);
                    assert_eq!(r.topics[0].error_code, 0, "{label}");
                }
                ApiKey::DeleteTopics => {
                    let topic = format!("created-v{}", 2 + (v % 6));
                    let mut req = DeleteTopicsRequest::default();
                    if v >= 6 {
                        let mut t = delete_topics_request::DeleteTopicState::default();
                        t.name = Some(name(&topic));
                        req.topics = vec![t];
                    } else {
                        req.topic_names = vec![name(&topic)];
                    }
                    let r: DeleteTopicsResponse = c.call(key, v, &req);
                    assert_eq!(r.responses[0].error_code, 0, "{label}");
                }
                ApiKey::DeleteRecords => {
                    let mut p = delete_records_request::DeleteRecordsPartition::default();
                    p.offset = 0;
                    let mut t = delete_records_request::DeleteRecordsTopic::default();
                    t.name = name("sweep");
                    t.partitions = vec![p];
                    let mut req = DeleteRecordsRequest::default();
                    req.topics = vec![t];
                    let r: DeleteRecordsResponse = c.call(key, v, &req);
                    assert_eq!(r.topics[0].partitions[0].error_code, 0, "{label}");
                }
                ApiKey::AddPartitionsToTxn => {
                    // An id no coordinator knows: refused, in the version's layout.
                    let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
                    t.name = name("sweep");
                    t.partitions = vec![0];
                    let mut req = AddPartitionsToTxnRequest::default();
                    req.v3_and_below_transactional_id = TransactionalId(StrBytes::from_static_str("sweep-txn"));
                    req.v3_and_below_producer_id = ProducerId(1);
                    req.v3_and_below_topics = vec![t];
                    let r: AddPartitionsToTxnResponse = c.call(key, v, &req);
                    let code = r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
                    assert!(matches!(code, 15 | 16 | 49), "{label}: {code}");
                }
                ApiKey::EndTxn => {
                    let mut req = EndTxnRequest::default();
                    req.transactional_id = TransactionalId(StrBytes::from_static_str("sweep-txn"));
                    req.producer_id = ProducerId(1);
                    let r: EndTxnResponse = c.call(key, v, &req);
                    assert!(matches!(r.error_code, 15 | 16 | 49), "{label}: {}", r.error_code);
                }
                ApiKey::WriteTxnMarkers => {
                    // An abort for a producer with nothing open: a marker that ends nothing.
                    let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
                    t.name = name("sweep");
                    t.partition_indexes = vec![0];
                    let mut m = write_txn_markers_request::WritableTxnMarker::default();
                    m.producer_id = ProducerId(1_000_000 + i64::from(v));
                    m.topics = vec![t];
                    let mut req = WriteTxnMarkersRequest::default();
                    req.markers = vec![m];
                    let r: WriteTxnMarkersResponse = c.call(key, v, &req);
                    assert_eq!(r.markers[0].topics[0].partitions[0].error_code, 0, "{label}");
                }
                ApiKey::InitProducerId => {
                    let mut req = InitProducerIdRequest::default();
                    req.transactional_id = None;
                    req.transaction_timeout_ms = 60_000;
                    let r: InitProducerIdResponse = c.call(key, v, &req);
                    assert_eq!(r.error_code, 0, "{label}");
                    assert!(r.producer_id.0 >= 0, "{label}");
                }
                ApiKey::DescribeConfigs => {
                    let mut res = describe_configs_request::DescribeConfigsResource::default();
                    res.resource_type = 2;
                    res.resource_name = StrBytes::from_static_str("sweep");
                    let mut req = DescribeConfigsRequest::default();
                    req.resources = vec![res];
                    req.include_synonyms = v >= 1;
                    let r: DescribeConfigsResponse = c.call(key, v, &req);
                    assert_eq!(r.results[0].error_code, 0, "{label}");
                    assert!(r.results[0].configs.iter().any(|c| c.name.as_str() == "retention.ms"), "{label}");
                }
                ApiKey::AlterConfigs => {
                    let mut cfg = alter_configs_request::AlterableConfig::default();
                    cfg.name = StrBytes::from_static_str("retention.ms");
                    cfg.value = Some(StrBytes::from_static_str("3600000"));
                    let mut res = alter_configs_request::AlterConfigsResource::default();
                    res.resource_type = 2;
                    res.resource_name = StrBytes::from_static_str("sweep");
                    res.configs = vec![cfg];
                    let mut req = AlterConfigsRequest::default();
                    req.resources = vec![res];
                    let r: AlterConfigsResponse = c.call(key, v, &req);
                    assert_eq!(r.responses[0].error_code, 0, "{label}");
                }
                ApiKey::IncrementalAlterConfigs => {
                    let mut cfg = incremental_alter_configs_request::AlterableConfig::default();
                    cfg.name = StrBytes::from_static_str("cleanup.policy");
                    cfg.config_operation = 2; // APPEND
                    cfg.value = Some(StrBytes::from_static_str("compact"));
                    let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
                    res.resource_type = 2;
                    res.resource_name = StrBytes::from_static_str("sweep");
                    res.configs = vec![cfg];
                    let mut req = IncrementalAlterConfigsRequest::default();
                    req.resources = vec![res];
                    let r: IncrementalAlterConfigsResponse = c.call(key, v, &req);
                    assert_eq!(r.responses[0].error_code, 0, "{label}");
                }
                ApiKey::CreatePartitions => {
                    partitions += 1;
                    let mut t = create_partitions_request::CreatePartitionsTopic::default();
                    t.name = name("sweep");
                    t.count = partitions as i32;
                    let mut req = CreatePartitionsRequest::default();
                    req.topics = vec![t];
                    req.timeout_ms = 1000;
                    let r: CreatePartitionsResponse = c.call(key, v, &req);
                    assert_eq!(r.results[0].error_code, 0, "{label}");
                }
                ApiKey::DescribeCluster => {
                    let mut req = DescribeClusterRequest::default();
                    req.endpoint_type = 1;
                    let r: DescribeClusterResponse = c.call(key, v, &req);
                    assert_eq!(r.error_code, 0, "{label}");
                    assert_eq!(r.brokers.len(), 1, "{label}");
                }
                ApiKey::ElectLeaders => {
                    let mut t = elect_leaders_request::TopicPartitions::default();
                    t.topic = name("sweep");
                    t.partitions = vec![0];
                    let mut req = ElectLeadersRequest::default();
                    req.topic_partitions = Some(vec![t]);
                    let r: ElectLeadersResponse = c.call(key, v, &req);
                    let p = &r.replica_election_results[0].partition_result[0];
                    assert_eq!(
                        p.error_code,
                        ResponseError::ElectionNotNeeded.code(),
                        "{label}: the sole replica leads"
                    );
                }
                ApiKey::AlterPartitionReassignments => {
                    // A cancel of nothing: answered per partition with NO_REASSIGNMENT_IN_PROGRESS.
                    let mut p = alter_partition_reassignments_request::ReassignablePartition::default();
                    p.partition_index = 0;
                    p.replicas = None;
                    let mut t = alter_partition_reassignments_request::ReassignableTopic::default();
                    t.name = name("sweep");
                    t.partitions = vec![p];
                    let mut req = AlterPartitionReassignmentsRequest::default();
                    req.topics = vec![t];
                    let r: AlterPartitionReassignmentsResponse = c.call(key, v, &req);
                    assert_eq!(r.error_code, 0, "{label}");
                    assert_eq!(
                        r.responses[0].partitions[0].error_code,
                        ResponseError::NoReassignmentInProgress.code(),
                        "{label}"
                    );
                }
                ApiKey::ListPartitionReassignments => {
                    let mut req = ListPartitionReassignmentsRequest::default();
                    req.topics = None;
                    let r: ListPartitionReassignmentsResponse = c.call(key, v, &req);
                    assert_eq!((r.error_code, r.topics.len()), (0, 0), "{label}: nothing in progress");
                }
                ApiKey::DescribeLogDirs => {
                    let r: DescribeLogDirsResponse = c.call(key, v, &DescribeLogDirsRequest::default());
                    assert_eq!(r.results.len(), 1, "{label}: one log directory");
                    let dir = &r.results[0];
                    assert_eq!(dir.error_code, 0, "{label}");
                    assert_eq!(dir.total_bytes > 0, v >= 4, "{label}: volume sizes from v4");
                }
                ApiKey::DescribeQuorum => {
                    let mut part = strom_protocol::messages::describe_quorum_request::PartitionData::default();
                    part.partition_index = 0;
                    let mut topic = strom_protocol::messages::describe_quorum_request::TopicData::default();
                    topic.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
                    topic.partitions = vec![part];
                    let mut req = strom_protocol::messages::DescribeQuorumRequest::default();
                    req.topics = vec![topic];
                    let r: strom_protocol::messages::DescribeQuorumResponse = c.call(key, v, &req);
                    assert_eq!(r.error_code, 0, "{label}");
                    let p = &r.topics[0].partitions[0];
                    assert_eq!((p.leader_id.0, p.current_voters.len()), (1, 1), "{label}: a sole voter leads");
                }
                ApiKey::UnregisterBroker => {
                    let mut req = UnregisterBrokerRequest::default();
                    req.broker_id = BrokerId(99);
                    let r: UnregisterBrokerResponse = c.call(key, v, &req);
                    assert_eq!(r.error_code, ResponseError::BrokerIdNotRegistered.code(), "{label}");
                }
                other if groups::sweep(&mut c, other, v) => {}
                other => panic!("{other:?} is advertised: add it to this sweep"),
            }
            checked += 1;
        }
    }
    assert!(checked > 110, "swept {checked} API versions");
    // The config changes above are visible.
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("sweep");
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req);
    let value = |k: &str| r.results[0].configs.iter().find(|c| c.name.as_str() == k).and_then(|c| c.value.clone());
    assert_eq!(value("cleanup.policy").as_deref(), Some("delete,compact"));
}
