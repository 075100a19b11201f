/// The study's response categories in the order every file, table and figure lists them: the six of the
/// probe set, then the model's own greedy answer and the teacher-forced argmax sequence. Other categories a
/// spec declares come after these.
public enum StandardCategories {
    public static let order = ["chosen", "rejected", "paraphrased_rejected", "variant", "random", "non_response", "greedy", "argmax"]
}
