// Type-checking stand-in for Apple's SwiftUI on Linux (scripts/check-ios). It declares only
// what ios/Sources/KeywayIOS and ios/App use, with Apple's names and argument labels, so the
// shell's own code (its use of KeywayKit and of the generated bindings) is type-checked here.
// It proves nothing about Apple's SDK itself: build the app with Xcode for that.
import Foundation

@MainActor @preconcurrency public protocol View {
    associatedtype Body: View
    @ViewBuilder var body: Body { get }
}

extension Never: View {
    public var body: Never { fatalError() }
}

/// Leaf views: their body is never evaluated here.
public protocol _Leaf: View where Body == Never {}
extension _Leaf {
    public var body: Never { fatalError() }
}

@resultBuilder public enum ViewBuilder {
    public static func buildBlock() -> EmptyView { EmptyView() }
    public static func buildBlock<Content: View>(_ content: Content) -> Content { content }
    public static func buildBlock<each C: View>(_ content: repeat each C) -> TupleView<(repeat each C)> {
        TupleView((repeat each content))
    }
    public static func buildExpression<Content: View>(_ content: Content) -> Content { content }
    public static func buildIf<Content: View>(_ content: Content?) -> Content? { content }
    public static func buildEither<T: View, F: View>(first: T) -> _ConditionalContent<T, F> { .init() }
    public static func buildEither<T: View, F: View>(second: F) -> _ConditionalContent<T, F> { .init() }
}

@resultBuilder public enum SceneBuilder {
    public static func buildBlock<S: Scene>(_ scene: S) -> S { scene }
}

public struct EmptyView: _Leaf { public init() {} }
public struct TupleView<T>: _Leaf { public init(_ value: T) {} }
public struct _ConditionalContent<T: View, F: View>: _Leaf { init() {} }
extension Optional: View where Wrapped: View {
    public var body: Never { fatalError() }
}

@MainActor @preconcurrency public protocol Scene {}
public struct WindowGroup<Content: View>: Scene {
    public init(@ViewBuilder content: () -> Content) {}
}

@MainActor @preconcurrency public protocol App {
    associatedtype Body: Scene
    @SceneBuilder var body: Body { get }
    init()
}
extension App {
    public static func main() {}
}

@propertyWrapper public struct State<Value> {
    private final class Box { var value: Value; init(_ v: Value) { value = v } }
    private let box: Box
    public init(wrappedValue: Value) { box = Box(wrappedValue) }
    public var wrappedValue: Value {
        get { box.value }
        nonmutating set { box.value = newValue }
    }
    public var projectedValue: Binding<Value> { Binding(get: { box.value }, set: { box.value = $0 }) }
}

public struct Binding<Value> {
    public init(get: @escaping () -> Value, set: @escaping (Value) -> Void) {}
}

public struct Text: _Leaf {
    public init<S: StringProtocol>(_ content: S) {}
}
public struct Image: _Leaf {
    public init(systemName: String) {}
}
public struct Label<Title: View, Icon: View>: _Leaf {}
extension Label where Title == Text, Icon == Image {
    public init<S: StringProtocol>(_ title: S, systemImage name: String) {}
}
public struct Spacer: _Leaf { public init(minLength: CGFloat? = nil) {} }
public struct ProgressView: _Leaf { public init() {} }
public struct TextField: _Leaf {
    public init<S: StringProtocol>(_ title: S, text: Binding<String>) {}
}
public struct SecureField: _Leaf {
    public init<S: StringProtocol>(_ title: S, text: Binding<String>) {}
}
public struct Toggle: _Leaf {
    public init<S: StringProtocol>(_ title: S, isOn: Binding<Bool>) {}
}
public struct ButtonRole: Sendable { public static let destructive = ButtonRole() }
public struct Button<Label: View>: _Leaf {
    public init(action: @escaping @MainActor () -> Void, @ViewBuilder label: () -> Label) {}
}
extension Button where Label == Text {
    public init<S: StringProtocol>(_ title: S, action: @escaping @MainActor () -> Void) {}
    public init<S: StringProtocol>(_ title: S, role: ButtonRole?, action: @escaping @MainActor () -> Void) {}
}
public struct Menu<Label: View, Content: View>: _Leaf {
    public init(@ViewBuilder content: () -> Content, @ViewBuilder label: () -> Label) {}
}

public struct HorizontalAlignment: Sendable {
    public static let leading = HorizontalAlignment(), center = HorizontalAlignment()
}
public struct VerticalAlignment: Sendable {
    public static let center = VerticalAlignment()
}
public struct Alignment: Sendable { public static let center = Alignment() }
public struct VStack<Content: View>: _Leaf {
    public init(alignment: HorizontalAlignment = .center, spacing: CGFloat? = nil, @ViewBuilder content: () -> Content) {}
}
public struct HStack<Content: View>: _Leaf {
    public init(alignment: VerticalAlignment = .center, spacing: CGFloat? = nil, @ViewBuilder content: () -> Content) {}
}
public struct Group<Content: View>: _Leaf {
    public init(@ViewBuilder content: () -> Content) {}
}
public struct List<Content: View>: _Leaf {
    public init(@ViewBuilder content: () -> Content) {}
}
public struct Form<Content: View>: _Leaf {
    public init(@ViewBuilder content: () -> Content) {}
}
public struct NavigationStack<Content: View>: _Leaf {
    public init(@ViewBuilder root: () -> Content) {}
}
public struct ForEach<Data: RandomAccessCollection, ID: Hashable, Content: View>: _Leaf {
    public init(_ data: Data, id: KeyPath<Data.Element, ID>, @ViewBuilder content: @escaping (Data.Element) -> Content) {}
}
public struct Section<Parent: View, Content: View, Footer: View>: _Leaf {}
extension Section {
    public init(@ViewBuilder content: () -> Content, @ViewBuilder header: () -> Parent, @ViewBuilder footer: () -> Footer) {}
}
extension Section where Parent == EmptyView {
    public init(@ViewBuilder content: () -> Content, @ViewBuilder footer: () -> Footer) {}
}
extension Section where Parent == Text, Footer == EmptyView {
    public init<S: StringProtocol>(_ title: S, @ViewBuilder content: () -> Content) {}
}

public protocol ShapeStyle {}
public struct Color: ShapeStyle, Sendable {
    public static let red = Color(), green = Color(), orange = Color()
}
extension ShapeStyle where Self == Color {
    public static var red: Color { .red }
    public static var green: Color { .green }
    public static var orange: Color { .orange }
}
public struct HierarchicalShapeStyle: ShapeStyle { public static let secondary = HierarchicalShapeStyle() }
extension ShapeStyle where Self == HierarchicalShapeStyle {
    public static var secondary: HierarchicalShapeStyle { .secondary }
}
public struct Material: ShapeStyle { public static let regularMaterial = Material() }
extension ShapeStyle where Self == Material {
    public static var regularMaterial: Material { .regularMaterial }
}
public protocol Shape {}
public struct RoundedRectangle: Shape { public init(cornerRadius: CGFloat) {} }

public struct Font: Sendable {
    public static let headline = Font(), subheadline = Font(), caption = Font(), footnote = Font()
}
public struct TextInputAutocapitalization: Sendable { public static let never = TextInputAutocapitalization() }
public enum VerticalEdge: Sendable { case top, bottom }
public struct Edge: Sendable {
    public struct Set: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let all = Set(rawValue: 15)
    }
}
public protocol PrimitiveButtonStyle {}
public struct BorderedProminentButtonStyle: PrimitiveButtonStyle { public init() {} }
extension PrimitiveButtonStyle where Self == BorderedProminentButtonStyle {
    public static var borderedProminent: BorderedProminentButtonStyle { .init() }
}

// Modifiers: the shell's code must call them with these labels and types.
extension View {
    public func font(_ font: Font?) -> some View { self }
    public func foregroundStyle<S: ShapeStyle>(_ style: S) -> some View { self }
    public func disabled(_ disabled: Bool) -> some View { self }
    public func navigationTitle<S: StringProtocol>(_ title: S) -> some View { self }
    public func textInputAutocapitalization(_ autocapitalization: TextInputAutocapitalization?) -> some View { self }
    public func autocorrectionDisabled(_ disable: Bool = true) -> some View { self }
    public func overlay<V: View>(alignment: Alignment = .center, @ViewBuilder content: () -> V) -> some View { self }
    public func refreshable(action: @escaping @Sendable () async -> Void) -> some View { self }
    public func toolbar<Content: View>(@ViewBuilder content: () -> Content) -> some View { self }
    public func safeAreaInset<V: View>(
        edge: VerticalEdge, alignment: HorizontalAlignment = .center, spacing: CGFloat? = nil,
        @ViewBuilder content: () -> V
    ) -> some View { self }
    public func buttonStyle<S: PrimitiveButtonStyle>(_ style: S) -> some View { self }
    public func padding(_ edges: Edge.Set = .all, _ length: CGFloat? = nil) -> some View { self }
    public func background<S: ShapeStyle, T: Shape>(_ style: S, in shape: T) -> some View { self }
    public func onOpenURL(perform action: @escaping (URL) -> Void) -> some View { self }
}
