fn main() {
    hakoniwa::cli::main()
}
