//! The consumer's side of a rebalance: revoke (all partitions with the eager protocol, only the
//! moving ones with the cooperative one), join, and take up the new assignment, telling the
//! rebalance listener at each step.

use super::assignor::RebalanceProtocol;
use super::listener::RebalanceContext;
use super::{group, Consumer, Subscription};
use crate::error::Result;
use crate::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub(crate) enum Callback {
    Revoked,
    Assigned,
    Lost,
}

impl Consumer {
    pub(crate) async fn maybe_rebalance(&mut self) -> Result<()> {
        self.check_pattern().await?;
        let topics = match &self.subscription {
            Subscription::Topics(t) => t.clone(),
            Subscription::Pattern { matched, .. } => matched.clone(),
            Subscription::None | Subscription::Assigned => return Ok(()),
        };
        let (rejoin, lost) = {
            let st = group::lock(&self.state);
            (st.rejoin_needed || !st.stable, st.lost)
        };
        if !rejoin {
            return Ok(());
        }
        if lost && !self.assignment.is_empty() {
            let gone = self.assignment();
            self.call_listener(Callback::Lost, &gone).await?;
            self.drop_partitions(&gone);
            group::lock(&self.state).lost = false;
        }
        if !self.cooperative && !self.assignment.is_empty() {
            if self.cfg.enable_auto_commit {
                if let Err(e) = self.commit_sync().await {
                    tracing::warn!("commit before rebalance failed: {e}");
                }
            }
            let all = self.assignment();
            self.call_listener(Callback::Revoked, &all).await?;
            self.drop_partitions(&all);
        }
        let group_id = self.group_id()?.to_string();
        if self.heartbeat.is_none() {
            let (cluster, cfg, state) = (Arc::clone(&self.cluster), self.cfg.clone(), Arc::clone(&self.state));
            self.heartbeat = Some(tokio::spawn(group::heartbeat_loop(cluster, cfg, group_id.clone(), state)));
        }
        let owned = self.assignment();
        let joined = group::join(&self.cluster, &self.cfg, &group_id, &self.state, &topics, &owned).await?;
        self.cooperative = joined.protocol == RebalanceProtocol::Cooperative;
        let new: BTreeSet<TopicPartition> = joined.assigned.into_iter().collect();
        if self.cooperative {
            let revoked: Vec<TopicPartition> = self.assignment.difference(&new).cloned().collect();
            if !revoked.is_empty() {
                self.call_listener(Callback::Revoked, &revoked).await?;
                self.drop_partitions(&revoked);
                // KIP-429: give the revoked partitions up, then rejoin so they can be reassigned.
                group::lock(&self.state).rejoin_needed = true;
            }
        }
        let added: Vec<TopicPartition> = new.difference(&self.assignment).cloned().collect();
        self.assignment = new;
        self.call_listener(Callback::Assigned, &added).await
    }

    /// For a pattern subscription: the topics matching now; a change asks for a rejoin.
    async fn check_pattern(&mut self) -> Result<()> {
        let due = match &self.subscription {
            Subscription::Pattern { matched, checked, .. } => {
                matched.is_empty()
                    || checked.elapsed() >= self.cfg.cluster.metadata_max_age
                    || group::lock(&self.state).rejoin_needed
            }
            _ => false,
        };
        if !due {
            return Ok(());
        }
        let all = self.cluster.fetch_metadata(None).await?;
        if let Subscription::Pattern { regex, matched, checked } = &mut self.subscription {
            let mut now: Vec<String> = all
                .topics
                .values()
                .filter(|t| !t.is_internal && regex.is_match(&t.name))
                .map(|t| t.name.clone())
                .collect();
            now.sort();
            *checked = std::time::Instant::now();
            if now != *matched {
                tracing::info!(topics = ?now, "pattern subscription matches new topics");
                self.cluster.add_topics(now.iter().map(String::as_str));
                *matched = now;
                group::lock(&self.state).rejoin_needed = true;
            }
        }
        Ok(())
    }

    fn drop_partitions(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.assignment.remove(tp);
            self.positions.remove(tp);
            self.paused.remove(tp);
        }
        self.discard_buffered(partitions);
    }

    /// Runs a listener callback, then makes the commits it asked for.
    pub(crate) async fn call_listener(&mut self, which: Callback, partitions: &[TopicPartition]) -> Result<()> {
        let Some(mut listener) = self.listener.take() else { return Ok(()) };
        let commits = {
            let mut ctx = RebalanceContext { positions: &mut self.positions, commits: BTreeMap::new() };
            match which {
                Callback::Revoked => listener.on_partitions_revoked(&mut ctx, partitions),
                Callback::Assigned => listener.on_partitions_assigned(&mut ctx, partitions),
                Callback::Lost => listener.on_partitions_lost(&mut ctx, partitions),
            }
            ctx.commits
        };
        self.listener = Some(listener);
        if !commits.is_empty() {
            self.commit_offsets(&commits).await?;
        }
        Ok(())
    }
}
