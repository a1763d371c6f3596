"""HTTPS as clusters speak it: the kit verifies the server, says so when it cannot, and takes client certificates.

The API stand-in serves HTTPS with a certificate authority of its own in every
kubeconfig it writes (so every other stand-in test runs over HTTPS too); here
are the cases a cluster's kubeconfig brings that a token over a trusted
connection does not.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest
import trustme
import yaml

from labkit.class_cluster import ClassAdmin
from labkit.engines.kubernetes import KubernetesEngine
from labkit.errors import ClassError, EngineUnavailable
from labkit.tls import UnverifiedServerWarning

pytestmark = pytest.mark.podman  # the stand-in asks Podman for its info when it starts


@pytest.fixture
def api(tmp_path):
    from tests.k8s_standin import KubernetesStandIn

    with KubernetesStandIn(namespaces=("default",), tmp_dir=tmp_path / "api") as server:
        yield server


def test_the_server_speaks_https_that_only_its_own_ca_vouches_for(api):
    assert api.url.startswith("https://127.0.0.1:")
    cluster = yaml.safe_load(Path(api.kubeconfig).read_text(encoding="utf-8"))["clusters"][0]["cluster"]
    assert "certificate-authority-data" in cluster and "insecure-skip-tls-verify" not in cluster
    with pytest.raises(urllib.error.URLError) as info:  # the system's CAs do not know it
        urllib.request.urlopen(api.url + "/version", timeout=5)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
    trusting = ssl.create_default_context(cafile=api.ca_file)
    asked = urllib.request.Request(api.url + "/version", headers={"Authorization": f"Bearer {api.token}"})
    with urllib.request.urlopen(asked, timeout=5, context=trusting) as reply:
        assert b"gitVersion" in reply.read()
    engine = KubernetesEngine(kubeconfig=api.kubeconfig)
    assert engine.server == api.url and engine.version.startswith("v1.")


def test_a_kubeconfig_trusting_another_ca_is_told_the_server_is_not_the_one_it_trusts(api, tmp_path):
    stranger = trustme.CA().cert_pem.bytes()
    wrong = api.kubeconfig_trusting(ca_data=stranger)
    with pytest.raises(EngineUnavailable) as info:
        KubernetesEngine(kubeconfig=wrong)
    message = str(info.value)
    assert f"the Kubernetes API server at {api.url} is not the one your kubeconfig trusts" in message
    assert "certificate" in message and "Get the kubeconfig again" in message
    with pytest.raises(ClassError, match="is not the one your kubeconfig trusts"):
        ClassAdmin(wrong).create(["ada"], tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_insecure_skip_tls_verify_works_and_warns_once(api):
    insecure = api.kubeconfig_trusting(insecure=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = KubernetesEngine(kubeconfig=insecure)
        second = KubernetesEngine(kubeconfig=insecure)
        assert first.version == second.version and first.version.startswith("v1.")
        second.api.list_namespaced_pod("default")
    ours = [w for w in caught if issubclass(w.category, UnverifiedServerWarning)]
    assert len(ours) == 1 and "insecure-skip-tls-verify" in str(ours[0].message)
    assert "certificate-authority-data" in str(ours[0].message)
    assert not [w for w in caught if "InsecureRequestWarning" in w.category.__name__]  # not once per request


def test_a_class_run_by_a_client_certificate_administrator(api, tmp_path):
    admin_config = api.kubeconfig_with_certificate()
    user = yaml.safe_load(Path(admin_config).read_text(encoding="utf-8"))["users"][0]["user"]
    assert set(user) == {"client-certificate-data", "client-key-data"}  # as kind and minikube write it
    admin = ClassAdmin(admin_config)
    out = tmp_path / "kubeconfigs"
    done = list(admin.create(["ada", "grace"], out))
    assert [d.namespace for d in done] == ["lab-ada", "lab-grace"]
    student = KubernetesEngine(kubeconfig=done[0].kubeconfig)
    assert student.namespace == "lab-ada" and student.server == api.url  # verified with the CA it was given
    assert student.api.list_namespaced_pod("lab-ada").items == []
    table = admin.status()
    assert list(table["namespace"]) == ["lab-ada", "lab-grace"]
    assert sorted(admin.delete(None, out)) == ["lab-ada", "lab-grace"]
    assert not list(out.iterdir())


def test_a_certificate_user_without_rights_is_refused_by_name(api, tmp_path):
    nobody = api.kubeconfig_with_certificate("jane", groups=("developers",))
    with pytest.raises(ClassError) as info:
        list(ClassAdmin(nobody).create(["ada"], tmp_path / "out"))
    message = str(info.value)
    assert 'User "jane" cannot' in message and "namespaces" in message
