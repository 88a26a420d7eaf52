//! A fleet on the simulator: children of the `child` fixture created and installed side by side,
//! adopted by the deployer, chunk stores registered, and the fixture's own reads.

use candid::Principal;
use deployer::{AdoptChildrenArg, Label};
use ic_sim::{artifacts, InstallMode, MessageId, Sim};

use crate::Deployer;

/// The `child` fixture's reads, as its controller `sender` makes them.
pub fn child_counter(sim: &mut Sim, sender: Principal, child: Principal) -> u64 {
    let (counter,): (u64,) = ic_sim::scenario::IcEnvExt::query(sim, sender, child, "counter", ())
        .expect("the child answers counter");
    counter
}

pub fn child_version(sim: &mut Sim, sender: Principal, child: Principal) -> String {
    let (version,): (String,) =
        ic_sim::scenario::IcEnvExt::query(sim, sender, child, "version", ())
            .expect("the child answers version");
    version
}

impl Deployer<Sim> {
    /// `per_subnet[i]` children on subnet `i` running `child_v1`, controlled by `controller` and
    /// the deployer; returned per subnet. Every install is sent before any is awaited, so they
    /// run side by side in a few rounds.
    pub fn create_children(
        &mut self,
        controller: Principal,
        per_subnet: &[usize],
    ) -> Vec<Vec<Principal>> {
        let child_v1 = artifacts::wasm("child_v1");
        let arg = candid::encode_one(None::<String>).expect("encode the child's argument");
        let installs: Vec<(usize, Principal, MessageId)> = per_subnet
            .iter()
            .enumerate()
            .flat_map(|(subnet, &count)| std::iter::repeat_n(subnet, count))
            .map(|subnet| {
                let child = self
                    .env
                    .create_canister(subnet, vec![controller, self.canister]);
                let install =
                    InstallMode::Install.install_code_payload(child, &child_v1, arg.clone());
                let sent = self
                    .env
                    .submit_update(
                        controller,
                        Principal::management_canister(),
                        "install_code",
                        install,
                    )
                    .expect("submit install_code");
                (subnet, child, sent)
            })
            .collect();
        let mut children = vec![Vec::new(); per_subnet.len()];
        for (subnet, child, sent) in installs {
            self.env.await_ingress(sent, 100).expect("install child_v1");
            children[subnet].push(child);
        }
        children
    }

    /// Gives each child its own state: child `i` counts `i % 7 + 1`.
    pub fn set_counters(&mut self, controller: Principal, children: &[Principal]) {
        for (index, &child) in children.iter().enumerate() {
            for _ in 0..index % 7 + 1 {
                let _: (u64,) = ic_sim::scenario::IcEnvExt::update(
                    &mut self.env,
                    controller,
                    child,
                    "increment",
                    (),
                )
                .expect("increment");
            }
        }
    }

    /// Adopts the children of `subnet_children[i]` as running on subnet `i`, 100 per call.
    pub fn adopt_all(&mut self, sender: Principal, subnet_children: &[Vec<Principal>]) {
        for (subnet, children) in subnet_children.iter().enumerate() {
            let subnet_id = self.env.subnet_id(subnet);
            for batch in children.chunks(100) {
                let arg = AdoptChildrenArg {
                    canister_ids: batch.to_vec(),
                    subnet: Some(subnet_id),
                    labels: Vec::<Label>::new(),
                };
                for adopted in self.adopt_children_ok(sender, arg) {
                    adopted.expect("adopt a child");
                }
            }
        }
    }

    /// Creates an empty canister on `subnet`, controlled by the deployer, and registers it as the
    /// subnet's chunk store.
    pub fn register_store(&mut self, sender: Principal, subnet: usize) -> Principal {
        let store = self.env.create_canister(subnet, vec![self.canister]);
        let subnet_id = self.env.subnet_id(subnet);
        self.register_chunk_store_ok(sender, subnet_id, store);
        store
    }
}
