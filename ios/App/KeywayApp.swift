import Foundation
import KeywayIOS
import KeywayKit
import SwiftUI

/// The app: one store over the Rust core, and the screens drawing its view model.
/// The server comes from the `KeywayAPIBase` Info.plist key.
@main
struct KeywayApp: App {
    private let store: Result<KeywayStore, any Error>

    init() {
        let apiBase = Bundle.main.object(forInfoDictionaryKey: "KeywayAPIBase") as? String ?? "https://keyway.example"
        store = Result { try KeywayShell.makeStore(apiBase: apiBase) }
    }

    var body: some Scene {
        WindowGroup {
            switch store {
            case .success(let store):
                RootView(store: store)
            case .failure(let error):
                Text("Keyway could not start: \(error.localizedDescription)").padding()
            }
        }
    }
}
