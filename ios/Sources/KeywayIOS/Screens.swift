import Foundation
import KeywayKit
import KeywayShared
import SwiftUI

// The screens draw `store.view` and call the store's intents; nothing else.

/// Sign-in, or the doors once signed in.
public struct RootView: View {
    let store: KeywayStore

    public init(store: KeywayStore) {
        self.store = store
    }

    public var body: some View {
        Group {
            if !store.view.ready {
                ProgressView()
            } else if store.view.signedIn {
                DoorsScreen(store: store)
            } else {
                SignInScreen(store: store)
            }
        }
        // Invite links (https://…/invite#CODE) open the app and sign the visitor in.
        .onOpenURL { url in store.redeemInvite(url.absoluteString) }
    }
}

struct SignInScreen: View {
    let store: KeywayStore
    @State private var email = ""
    @State private var password = ""
    @State private var invite = ""

    var body: some View {
        let view = store.view
        NavigationStack {
            Form {
                Section("Sign in") {
                    TextField("Email", text: $email)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                    SecureField("Password", text: $password)
                    Button("Sign in") { store.login(email: email, password: password) }
                        .disabled(view.authBusy || email.isEmpty || password.isEmpty)
                    if let error = view.authError {
                        Text(error).foregroundStyle(.red)
                    }
                }
                Section {
                    TextField("Invite code or link", text: $invite)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                    Button("Redeem invite") { store.redeemInvite(invite) }
                        .disabled(view.invite.busy || invite.isEmpty)
                    if let error = view.invite.error {
                        Text(error).foregroundStyle(.red)
                    }
                } header: {
                    Text("Visitor")
                } footer: {
                    Text("An invite opens its doors during its time window, without a password.")
                }
                if let error = store.shellError {
                    Text(error).foregroundStyle(.orange)
                }
            }
            .navigationTitle("Keyway")
            .overlay {
                if view.authBusy || view.invite.busy { ProgressView() }
            }
        }
    }
}

struct DoorsScreen: View {
    let store: KeywayStore

    var body: some View {
        let view = store.view
        NavigationStack {
            List {
                if let notice = view.notice {
                    Label(notice, systemImage: "exclamationmark.triangle")
                }
                if view.stale {
                    Label("Offline: the last known doors", systemImage: "wifi.slash").font(.footnote)
                }
                ForEach(view.places, id: \.id) { place in
                    Section(place.name) {
                        ForEach(place.locks, id: \.id) { lock in
                            LockRow(store: store, lock: lock)
                        }
                    }
                }
                Section {
                    Toggle(
                        "Find nearby doors",
                        isOn: Binding(get: { view.scanning }, set: { store.setScanning($0) }))
                    if let note = view.lastWalkUp {
                        Text(walkUpLine(note, in: view)).font(.footnote)
                    }
                } footer: {
                    Text(accountLine(view))
                }
            }
            .navigationTitle(view.selectedOrg?.name ?? "Doors")
            .refreshable { await MainActor.run { store.reload() } }
            .toolbar {
                Menu {
                    if view.orgs.count > 1 {
                        ForEach(view.orgs, id: \.id) { org in
                            Button(org.selected ? "✓ \(org.name)" : org.name) { store.selectOrg(org.id) }
                        }
                    }
                    Button("Sign out", role: .destructive) { store.logout() }
                } label: {
                    Image(systemName: "person.crop.circle")
                }
            }
            .safeAreaInset(edge: .bottom) {
                if let unlock = view.unlock {
                    UnlockBanner(unlock: unlock) { store.dismissUnlock() }
                }
            }
        }
    }

    private func accountLine(_ view: ViewModel) -> String {
        var parts = [view.userEmail ?? ""]
        if view.guest { parts.append("visitor") }
        if let credential = view.credential {
            let until = Date(timeIntervalSince1970: TimeInterval(credential.notAfter))
            parts.append("offline key until \(until.formatted(date: .abbreviated, time: .shortened))")
        }
        return parts.filter { !$0.isEmpty }.joined(separator: " · ")
    }

    private func walkUpLine(_ note: WalkUpNote, in view: ViewModel) -> String {
        let door = view.lock(id: note.lock)?.name ?? "a door"
        let distance = String(format: "%.1f m", note.distanceM)
        return note.skipped.map { "Walk-up at \(door) (\(distance)) skipped: \($0)" } ?? "Walk-up at \(door) (\(distance))"
    }
}

struct LockRow: View {
    let store: KeywayStore
    let lock: LockView

    var body: some View {
        VStack(alignment: .leading, spacing: 8) {
            HStack {
                VStack(alignment: .leading) {
                    Text(lock.name).font(.headline)
                    Text(lock.statusLine).font(.caption).foregroundStyle(.secondary)
                }
                Spacer()
                Button("Open") { store.unlock(lock) }
                    .buttonStyle(.borderedProminent)
            }
            if lock.walkUpAllowed {
                Toggle(
                    "Open when I walk up",
                    isOn: Binding(get: { lock.walkUpEnabled }, set: { store.setWalkUp(lock, enabled: $0) })
                )
                .font(.subheadline)
            }
        }
    }
}

struct UnlockBanner: View {
    let unlock: UnlockView
    let dismiss: () -> Void

    var body: some View {
        HStack(spacing: 12) {
            switch unlock.phase {
            case .checking, .inProgress:
                ProgressView()
            case .granted:
                Image(systemName: "lock.open.fill").foregroundStyle(.green)
            case .denied:
                Image(systemName: "xmark.octagon.fill").foregroundStyle(.red)
            case .unconfirmed, .other:
                Image(systemName: "questionmark.circle.fill").foregroundStyle(.orange)
            }
            VStack(alignment: .leading) {
                Text(unlock.walkUp ? "\(unlock.lockName) (walk-up)" : unlock.lockName).font(.headline)
                Text(unlock.message).font(.subheadline)
                if let route = unlock.routeLabel {
                    Text("via \(route)").font(.caption).foregroundStyle(.secondary)
                }
            }
            Spacer()
            if unlock.isFinished {
                Button("Done", action: dismiss)
            }
        }
        .padding()
        .background(.regularMaterial, in: RoundedRectangle(cornerRadius: 16))
        .padding()
    }
}
