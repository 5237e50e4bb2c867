"""The four failures of Shalev-Shwartz, Shamir & Shammah, "Failures of Gradient-Based Deep Learning" (ICML 2017), §2-§5."""
