// The binary's allocator; a program that uses the library keeps its own.
#[global_allocator]
static ALLOCATOR: hakoniwa::cli::StartupArena = hakoniwa::cli::StartupArena::new();

fn main() {
    hakoniwa::cli::main()
}
