"""Hypothesis fuzzing of every response parser: any JSON in, a result or ParseError out, nothing else."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obs_bridges import github, railway_api, supabase, vercel
from obs_bridges.httpclient import ApiError, next_link, parse_retry_after
from tests.support.fuzz import json_values, mutated

SAMPLES = {
    github.parse_runs: {"total_count": 1, "workflow_runs": [{
        "id": 101, "name": "Deploy", "workflow_id": 9, "path": ".github/workflows/deploy.yml", "head_branch": "main",
        "head_sha": "abc", "run_number": 42, "run_attempt": 1, "event": "push", "status": "completed",
        "conclusion": "success", "created_at": "2026-08-20T10:00:00Z", "run_started_at": "2026-08-20T10:00:05Z",
        "updated_at": "2026-08-20T10:04:00Z"}]},
    github.parse_jobs: {"total_count": 1, "jobs": [{
        "id": 5, "run_id": 101, "run_attempt": 1, "name": "build", "status": "completed", "conclusion": "success",
        "created_at": "2026-08-20T10:00:05Z", "started_at": "2026-08-20T10:00:20Z",
        "completed_at": "2026-08-20T10:03:50Z", "labels": ["ubuntu-latest"], "steps": []}]},
    github.parse_workflows: {"total_count": 1, "workflows": [{"id": 9, "name": "Deploy", "path": "x", "state": "a"}]},
    github.parse_repos: [{"full_name": "o/r", "archived": False}],
    vercel.parse_deployments: {"deployments": [{
        "uid": "dpl_1", "name": "web", "projectId": "prj_1", "url": "web-abc.vercel.app", "created": 1787220000000,
        "createdAt": 1787220000000, "buildingAt": 1787220004000, "ready": 1787220064000, "state": "READY",
        "readyState": "READY", "readySubstate": "PROMOTED", "target": "production", "source": "git",
        "creator": {"uid": "u1"}, "meta": {"githubCommitSha": "abc123", "githubCommitRef": "main"}}],
        "pagination": {"count": 1, "next": None, "prev": 1787220000000}},
    vercel.parse_projects: {"projects": [{"id": "prj_1", "name": "web"}], "pagination": {"count": 1, "next": None}},
    railway_api.gql_data: {"data": {"deployments": {"edges": [{"node": {"id": "d1", "status": "SUCCESS",
                       "createdAt": "2026-08-20T10:00:00Z"}}], "pageInfo": {"hasNextPage": False, "endCursor": None}}}},
    railway_api.parse_deployments: {"edges": [{"node": {"id": "d1", "status": "SUCCESS", "createdAt": "2026-08-20T10:00:00Z",
                                "statusUpdatedAt": "2026-08-20T10:03:10Z", "serviceId": "s1", "environmentId": "e1",
                                "meta": {}}}], "pageInfo": {"hasNextPage": False, "endCursor": None}},
    railway_api.parse_events: {"edges": [{"node": {"step": "BUILD_IMAGE", "createdAt": "2026-08-20T10:00:00Z",
                           "completedAt": "2026-08-20T10:01:00Z", "payload": {"durationMs": 60000}}}]},
    railway_api.parse_metrics: [{"measurement": "CPU_USAGE", "tags": {"serviceId": "s1"},
                             "values": [{"ts": 1787220000, "value": 0.12}]}],
    railway_api.parse_usage: [{"measurement": "CPU_USAGE", "estimatedValue": 12.5}],
    supabase.parse_projects: [{"id": "abcdefghijklmnopqrst", "ref": "abcdefghijklmnopqrst", "organization_id": "o1",
                               "name": "prod", "region": "us-east-1", "created_at": "2025-01-01T00:00:00Z",
                               "status": "ACTIVE_HEALTHY", "database": {"host": "db.x.supabase.co",
                                                                        "version": "15.8.1"}}],
    supabase.parse_health: [{"name": "db", "healthy": True, "status": "ACTIVE_HEALTHY"},
                            {"name": "realtime", "healthy": False, "status": "UNHEALTHY", "info": {}, "error": "x"}],
}


def _call(fn, data):
    try:
        fn(data)
    except ApiError:
        pass  # ParseError (a subclass) or, for GraphQL error payloads, an auth/http ApiError


def test_samples_parse():
    for fn, sample in SAMPLES.items():
        fn(copy.deepcopy(sample))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=json_values)
def test_parsers_survive_arbitrary_json(data):
    for fn in SAMPLES:
        _call(fn, data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(min_value=0, max_value=10**6), pick=st.integers(min_value=0, max_value=10**6),
       value=json_values)
def test_parsers_survive_mutated_samples(which, pick, value):
    fns = list(SAMPLES)
    fn = fns[which % len(fns)]
    _call(fn, mutated(SAMPLES[fn], pick, value))


@given(st.text(max_size=200))
def test_header_parsers_never_raise(text):
    next_link(text)
    parse_retry_after(text)
