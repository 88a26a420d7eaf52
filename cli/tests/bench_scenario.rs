//! The bench's `cli_upload_30_mib` scenario (bench/src/scenarios/cli_upload.rs), run here where
//! the CLI's library and the local network are at hand: 30 MiB through the CLI's upload over
//! loopback moves the messages and executes the instructions of the in-process upload.

#[path = "../../bench/src/scenarios/cli_upload.rs"]
mod cli_upload;

#[test]
fn thirty_mib_through_the_cli_cost_what_they_cost_in_process() {
    let figures = cli_upload::thirty_mib();
    println!("{figures:#?}");
    assert_eq!(figures["messages"], figures["messages_in_process"]);
    assert_eq!(figures["messages"], 32, "open, 30 chunks, commit");
    assert_eq!(
        figures["instructions_percent_of_in_process"], 100,
        "{figures:#?}"
    );
    assert_eq!(figures["bytes_moved"], figures["bytes_moved_in_process"]);
}
