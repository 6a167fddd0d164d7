fn main() {
    std::process::exit(pgshift::cli::main());
}
