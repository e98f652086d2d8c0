//! The custom resources patchbay serves, in group `patchbay.dev`, version `v1alpha1`.
