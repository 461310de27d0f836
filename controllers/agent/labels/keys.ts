// The label keys Cilium itself sets on pods' endpoints and on policy rules (upstream
// pkg/k8s/apis/cilium.io/const.go); all carry source `k8s`.

/** Label keys with this prefix are Cilium's to set; a pod that carries them has them dropped. */
export const CILIUM_LABEL_PREFIX = 'io.cilium.k8s';
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
/** Each of the namespace's labels, under this prefix, on every pod in it. */
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';
export const POLICY_LABEL_SERVICE_ACCOUNT = 'io.cilium.k8s.policy.serviceaccount';
export const POLICY_LABEL_CLUSTER = 'io.cilium.k8s.policy.cluster';
