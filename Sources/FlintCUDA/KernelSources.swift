/// The kernel sources compiled into the binary (SwiftPM `.embedInCode`), so a static binary
/// carries them to a GPU machine.
public enum KernelSources {
    public static var all: [KernelSource] { [] }
}
