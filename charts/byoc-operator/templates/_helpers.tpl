{{/* Names, labels and the operator's permissions, shared by the templates. */}}

{{- define "byoc-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "byoc-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "byoc-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "byoc-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "byoc-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "byoc-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: byoc-operator
{{- end }}

{{- define "byoc-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "byoc-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "byoc-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The namespaces the operator serves, as a JSON list: watchNamespaces, or the release's own by default; [] for the
cluster-wide install (clusterWide), which serves every namespace.
*/}}
{{- define "byoc-operator.namespaces" -}}
{{- if .Values.clusterWide }}
{{- if .Values.watchNamespaces }}
{{- fail "clusterWide: true serves every namespace: leave watchNamespaces empty, or set clusterWide: false to serve only watchNamespaces" }}
{{- end }}
{{- list | toJson }}
{{- else }}
{{- .Values.watchNamespaces | default (list .Release.Namespace) | toJson }}
{{- end }}
{{- end }}

{{/* "true" when kopf peering is on: asked for, or needed because there are several replicas. */}}
{{- define "byoc-operator.peering" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "byoc-operator.peeringName" -}}
{{- default (include "byoc-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{/*
What the operator touches in the namespaces it serves, read from its code (handlers.py, reconcile.py,
orchestrator.py) and checked by running it under exactly these rules (tests/chart).
*/}}
{{- define "byoc-operator.workerRules" -}}
# BYOCWorkers: watched (kopf list+watch), their finalizer added and removed (merge patch), status written.
- apiGroups: [byoc.livepeer.org]
  resources: [byocworkers]
  verbs: [list, watch, patch]
- apiGroups: [byoc.livepeer.org]
  resources: [byocworkers/status]
  verbs: [patch]
# Children: kept in memory by kopf indexes (list+watch), server-side applied (patch; create for a new object),
# deleted when the spec stops asking for them (the router, a disruption budget, a network policy, runners.json).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch, delete]
# ConfigMaps: the runners.json of Live Runner static mode, same life cycle as the other children.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch, create, patch, delete]
# Pods: read to tell why a worker is not ready (scheduling, image, crash loop); patched by the autoscaler to
# mark busy pods with controller.kubernetes.io/pod-deletion-cost, so a scale-down removes idle pods first.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, patch]
# Secrets: orchestrator secrets are read by name when registering (get); Secrets labelled
# byoc.livepeer.org/orchestrator are watched to follow a fleet (list+watch; RBAC cannot filter by label). A BYOC
# worker that names no token gets a generated one (create once; delete when the spec names its own).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, delete]
# Events on BYOCWorkers (Ready/Degraded transitions, registration), posted through kopf.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/*
Cluster-scoped reads for BYOCOrchestrators: the orchestrators themselves (kept in a kopf index) and namespace
labels, which their namespaceSelector matches (handlers.py).
*/}}
{{- define "byoc-operator.orchestratorRules" -}}
- apiGroups: [byoc.livepeer.org]
  resources: [byocorchestrators]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
