//! The NoCloud seed ISO of a VM on an ISO-capable storage of one node
//! (`proxmox.iso_storage`, `local` by default): uploaded through the API,
//! found again by its file name, removed with the VM. The node that holds a
//! VM's seed is where the VM is placed, as a cdrom can only use a volume of
//! a storage its node reaches.

use super::client::{segment, Client, Upload};
use crate::provider::{ErrorCode, ProviderError};

/// A seed ISO found on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedSeed {
    pub node: String,
    /// `<storage>:iso/<file>`, what a cdrom drive names.
    pub volid: String,
}

pub struct Seeds<'c> {
    client: &'c Client,
    storage: &'c str,
}

/// The seed's file name; VM names are DNS labels, so it needs no escaping.
pub fn file_name(vm: &str) -> String {
    format!("blockhost-seed-{vm}.iso")
}

impl<'c> Seeds<'c> {
    pub fn new(client: &'c Client, storage: &'c str) -> Self {
        Self { client, storage }
    }

    pub fn volid(&self, vm: &str) -> String {
        format!("{}:iso/{}", self.storage, file_name(vm))
    }

    /// Where the VM's seed is. A node that is offline cannot be asked: that
    /// is an error, as its storage may hold the seed.
    pub fn find(&self, vm: &str) -> Result<Vec<StagedSeed>, ProviderError> {
        self.search(vm, self.nodes()?.into_iter().map(|(node, _)| node))
    }

    /// Where the VM's seed is on the nodes that are online: the seeds a new VM
    /// can use. One node down does not stop creates on the others.
    pub fn find_usable(&self, vm: &str) -> Result<Vec<StagedSeed>, ProviderError> {
        self.search(vm, self.nodes()?.into_iter().filter(|(_, online)| *online).map(|(node, _)| node))
    }

    fn search(&self, vm: &str, nodes: impl Iterator<Item = String>) -> Result<Vec<StagedSeed>, ProviderError> {
        let volid = self.volid(vm);
        let mut found = Vec::new();
        for node in nodes {
            let path = format!("/nodes/{}/storage/{}/content", segment(&node), segment(self.storage));
            let listed = self.client.get(&path, &[("content", "iso")])?;
            if listed.as_array().into_iter().flatten().any(|v| v["volid"] == volid.as_str()) {
                found.push(StagedSeed { node, volid: volid.clone() });
            }
        }
        Ok(found)
    }

    /// Uploads the seed to `node`, replacing one already there.
    pub fn upload(&self, vm: &str, node: &str, iso: &[u8]) -> Result<StagedSeed, ProviderError> {
        let staged = StagedSeed { node: node.to_string(), volid: self.volid(vm) };
        if self.find_usable(vm)?.contains(&staged) {
            self.remove(&staged)?;
        }
        let name = file_name(vm);
        let upload = Upload { name: &name, content: "iso", reader: &mut &iso[..], len: iso.len() as u64, sha256: None };
        self.client.upload(node, self.storage, upload)?;
        Ok(staged)
    }

    /// Deletes a seed; one already gone is success.
    pub fn remove(&self, seed: &StagedSeed) -> Result<(), ProviderError> {
        let path = format!("/nodes/{}/storage/{}/content/{}", segment(&seed.node), segment(self.storage), segment(&seed.volid));
        match self.client.run_task("DELETE", &path, &[]) {
            Err(e) if e.code == ErrorCode::NotFound => Ok(()),
            other => other,
        }
    }

    /// The cluster's nodes, with whether each is online.
    fn nodes(&self) -> Result<Vec<(String, bool)>, ProviderError> {
        let nodes = self.client.get("/nodes", &[])?;
        Ok(nodes.as_array().into_iter().flatten().filter_map(|n| Some((n["node"].as_str()?.to_string(), n["status"] == "online"))).collect())
    }
}
