//! Scale: a fleet of 100,000 children, each with three labels, in three in-memory memories (the
//! canister's virtual memories add only address translation). Listing every page, with and without filters, must return
//! exactly the expected children, and one page must read a bounded number of index entries.
//! Prints the time taken and the stable memory used per child (run with `--nocapture`).

use std::time::Instant;

use ic_stable_structures::{Memory, VectorMemory};

use super::tests::{admin, canister, labels, subnet};
use super::*;
use crate::memory::WASM_PAGE_BYTES;

const FLEET: u64 = 100_000;
const TIERS: [&str; 3] = ["free", "pro", "enterprise"];
const REGIONS: [&str; 4] = ["eu", "us", "ap", "sa"];
const V1: ModuleHash = ModuleHash([1; 32]);
const V2: ModuleHash = ModuleHash([2; 32]);

fn module_of(n: u64) -> ModuleHash {
    if n.is_multiple_of(2) {
        V1
    } else {
        V2
    }
}

fn adopt_fleet(fleet: &mut Fleet<VectorMemory>) {
    for n in 0..FLEET {
        let tenant = format!("tenant-{n}");
        let labels = labels(&[
            ("tier", TIERS[(n % 3) as usize]),
            ("region", REGIONS[(n % 4) as usize]),
            ("tenant", &tenant),
        ]);
        fleet
            .adopt(
                canister(n),
                subnet((n % 2) as u8),
                Some(module_of(n)),
                &labels,
                n,
                admin(),
            )
            .unwrap();
    }
}

/// Pages through `arg` with the largest id pages and checks the result against `expected`
/// (canister ids are `n` big-endian, so byte order is `n` order) and every page's reads against
/// `max_touched`. Returns the number of pages.
fn assert_paged<M: Memory>(
    fleet: &Fleet<M>,
    mut arg: ListChildrenArg,
    expected: impl Fn(u64) -> bool,
    max_touched: u64,
) -> usize {
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let scan = fleet.scan_ids(&arg, MAX_ID_PAGE).unwrap();
        pages += 1;
        assert!(
            scan.touched <= max_touched,
            "page {pages} read {} entries, more than {max_touched}",
            scan.touched
        );
        listed.extend(scan.ids.iter().map(canister_id));
        match scan.next {
            Some(next) => arg.from = Some(canister_id(&next)),
            None => break,
        }
    }
    let wanted: Vec<Principal> = (0..FLEET).filter(|n| expected(*n)).map(canister).collect();
    assert_eq!(listed.len(), wanted.len());
    assert!(
        listed == wanted,
        "the listed children differ from the expected ones"
    );
    pages
}

fn filter(pairs: &[(&str, &str)], module: Option<ModuleHash>) -> ListChildrenArg {
    ListChildrenArg {
        labels: labels(pairs),
        module_hash: module.map(|hash| serde_bytes::ByteBuf::from(hash.0.to_vec())),
        from: None,
        limit: None,
    }
}

#[test]
fn a_fleet_of_100_000_children_lists_and_filters_in_bounded_pages() {
    let started = Instant::now();
    let memories: [VectorMemory; 4] = Default::default();
    let [children, index, subnets, composition] = memories.clone();
    let mut fleet = Fleet::init(FleetMemories {
        children,
        index,
        subnets,
        composition,
    });
    adopt_fleet(&mut fleet);
    let adopted_in = started.elapsed();
    assert_eq!(fleet.len(), FLEET);

    // A lone list (all children, one label, one module): a page reads its entries and one more.
    let one_list = u64::from(MAX_ID_PAGE) + 1;
    let pages = assert_paged(&fleet, ListChildrenArg::default(), |_| true, one_list);
    assert_eq!(pages, (FLEET / u64::from(MAX_ID_PAGE)) as usize);
    assert_paged(
        &fleet,
        filter(&[("tier", "pro")], None),
        |n| n % 3 == 1,
        one_list,
    );
    assert_paged(&fleet, filter(&[], Some(V2)), |n| n % 2 == 1, one_list);
    assert_paged(
        &fleet,
        filter(&[("tenant", "tenant-77777")], None),
        |n| n == 77_777,
        one_list,
    );

    // Intersections: bounded by the scan budget, however rarely the lists meet.
    let budget = SCAN_BUDGET + 1;
    assert_paged(
        &fleet,
        filter(&[("tier", "pro"), ("region", "eu")], None),
        |n| n % 3 == 1 && n.is_multiple_of(4),
        budget,
    );
    assert_paged(
        &fleet,
        filter(&[("region", "ap")], Some(V1)),
        |n| n % 4 == 2,
        budget,
    );
    // Region `eu` holds only even children and module V2 only odd ones: two dense, interleaved
    // lists that never meet, the costliest intersection. The budget cuts it into several pages.
    let disjoint_pages = assert_paged(
        &fleet,
        filter(&[("region", "eu")], Some(V2)),
        |_| false,
        budget,
    );
    assert!(
        disjoint_pages > 1,
        "a disjoint scan took {disjoint_pages} page"
    );

    // A page of full records.
    let page = fleet.list(&filter(&[("region", "sa")], Some(V2))).unwrap();
    assert_eq!(page.children.len(), MAX_CHILD_PAGE as usize);
    for (k, child) in page.children.iter().enumerate() {
        let n = 3 + 4 * k as u64;
        assert_eq!(child.canister_id, canister(n));
        assert_eq!(child.subnet, subnet(1));
        assert!(child
            .labels
            .contains(&Label::new("tenant", format!("tenant-{n}"))));
    }
    assert_eq!(page.next, Some(canister(3 + 4 * u64::from(MAX_CHILD_PAGE))));

    let selected = fleet
        .select(&Selector::Labels(labels(&[("tier", "enterprise")])))
        .unwrap()
        .len();
    assert_eq!(selected as u64, (FLEET + 1) / 3);

    let bytes: u64 = memories
        .iter()
        .map(|memory| memory.size() * WASM_PAGE_BYTES)
        .sum();
    println!(
        "fleet of {FLEET}: adopted in {adopted_in:?}, checked in {:?}; {} bytes of stable \
         memory per child (records {} pages, index {} pages)",
        started.elapsed() - adopted_in,
        bytes / FLEET,
        memories[0].size(),
        memories[1].size(),
    );
}
