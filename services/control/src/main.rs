//! `baton-control`: the control service binary.

fn main() -> std::process::ExitCode {
    baton_control::command::main()
}
