// swift-tools-version:6.0
// The iOS shell of Keyway as a Swift package:
//   KeywayShared  the uniffi-generated Swift bindings of the Rust core (Generated/, not in git)
//   KeywayKit     platform-free Swift over them: store, events, BLE bridge, key bridge
//   KeywayIOS     SwiftUI screens, CoreBluetooth radio, Secure Enclave key (Apple only)
// The app target itself (App/, with @main) is built by Xcode; see README.md.
import PackageDescription

#if os(Linux)
// scripts/check-ios: the C half of the bindings as a module map that links the Rust .so.
let ffi: Target = .systemLibrary(name: "keyway_sharedFFI", path: "Generated/keyway_sharedFFI")
let appleTargets: [Target] = []
let appleProducts: [Product] = []
#else
// scripts/build-xcframework: static Rust libraries for iOS, the simulator and macOS.
let ffi: Target = .binaryTarget(name: "keyway_sharedFFI", path: "Generated/KeywayCore.xcframework")
let appleTargets: [Target] = [
    .target(
        name: "KeywayIOS",
        dependencies: ["KeywayKit"],
        // CoreBluetooth delegates and SwiftUI predate strict concurrency checking.
        swiftSettings: [.swiftLanguageMode(.v5)]),
]
let appleProducts: [Product] = [.library(name: "KeywayIOS", targets: ["KeywayIOS"])]
#endif

let package = Package(
    name: "Keyway",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [.library(name: "KeywayKit", targets: ["KeywayKit"])] + appleProducts,
    targets: [
        ffi,
        .target(
            name: "KeywayShared",
            dependencies: ["keyway_sharedFFI"],
            path: "Generated/KeywayShared",
            // What the Rust static library needs from Apple (rustls-platform-verifier);
            // `cargo rustc ... --print native-static-libs` lists it.
            linkerSettings: [
                .linkedFramework("Security", .when(platforms: [.iOS, .macOS])),
                .linkedFramework("CoreFoundation", .when(platforms: [.iOS, .macOS])),
            ]),
        .target(name: "KeywayKit", dependencies: ["KeywayShared"]),
        .testTarget(name: "KeywayKitTests", dependencies: ["KeywayKit", "KeywayShared"]),
    ] + appleTargets
)
