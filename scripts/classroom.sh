#!/usr/bin/env bash
# classroom.sh - give each student of a class their own namespace and kubeconfig on a shared cluster.
#
# Who runs it: the instructor, with kubectl pointed at the cluster as an administrator.
#   scripts/classroom.sh render ID            print the namespace, service account, Role and
#                                             RoleBinding for one student (manifests/classroom-rbac.yaml)
#   scripts/classroom.sh create N [OUT_DIR]   create student-01 .. student-N and write
#                                             OUT_DIR/student-NN.kubeconfig (default OUT_DIR: kubeconfigs/)
#   scripts/classroom.sh delete N             delete the students' namespaces (and every pod in them)
# Environment: PREFIX (default "student"), TOKEN_DURATION (default 12h, for `kubectl create token`).
# Each kubeconfig holds a token: hand it to its student only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE="$HERE/../manifests/classroom-rbac.yaml"
PREFIX=${PREFIX:-student}
TOKEN_DURATION=${TOKEN_DURATION:-12h}

die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
student_id() { printf '%s-%02d' "$PREFIX" "$1"; }
check_count() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] || die "give the number of students, e.g. 40"; }
need_kubectl() { command -v kubectl >/dev/null || die "kubectl is needed (https://kubernetes.io/docs/tasks/tools/)"; }

render() {
    [[ "$1" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "student id '$1' must be a lower-case DNS label"
    sed "s/STUDENT/$1/g" "$TEMPLATE"
}

create() {
    local count=$1 out=${2:-kubeconfigs} id ns token server ca
    check_count "$count"; need_kubectl
    mkdir -p "$out"; chmod 700 "$out"
    server=$(kubectl config view --minify --raw --flatten -o jsonpath='{.clusters[0].cluster.server}')
    ca=$(kubectl config view --minify --raw --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
    for i in $(seq 1 "$count"); do
        id=$(student_id "$i"); ns="lab-$id"
        render "$id" | kubectl apply -f - >/dev/null
        token=$(kubectl create token "$id" -n "$ns" --duration "$TOKEN_DURATION")
        umask 077
        cat > "$out/$id.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: classroom
  cluster:
    server: $server
    ${ca:+certificate-authority-data: $ca}
users:
- name: $id
  user:
    token: $token
contexts:
- name: $id
  context: {cluster: classroom, user: $id, namespace: $ns}
current-context: $id
KUBECONFIG
        printf '==> %s: namespace %s, kubeconfig %s\n' "$id" "$ns" "$out/$id.kubeconfig"
    done
}

delete() {
    local count=$1 i
    check_count "$count"; need_kubectl
    for i in $(seq 1 "$count"); do
        kubectl delete namespace "lab-$(student_id "$i")" --ignore-not-found --wait=false
    done
}

case "${1:-}" in
    render) [ $# -eq 2 ] || die "usage: $0 render ID"; render "$2" ;;
    create) [ $# -ge 2 ] || die "usage: $0 create N [OUT_DIR]"; create "$2" "${3:-}" ;;
    delete) [ $# -eq 2 ] || die "usage: $0 delete N"; delete "$2" ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
