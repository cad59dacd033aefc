fn main() -> std::process::ExitCode {
    nexero::cli::run()
}
