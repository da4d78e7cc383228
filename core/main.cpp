int main() { return 1; }  // replaced by the CLI in the next commit
