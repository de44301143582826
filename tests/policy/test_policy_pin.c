/*
 * test_policy_pin.c - version pins: globs on the served model and the
 * system_fingerprint, a missing fingerprint against a pin, drift marks
 * set and cleared by responses, probes of a drifted target once a
 * minute, and manual marks.
 */
#include "tests/policy/ptest.h"

static char *m_star[] = {"*"};

int main(void) {
    struct cfg c;
    t_defaults(&c);
    struct cfg_target t[] = {t_up("openai", "gpt-4o"), t_up("openai", "gpt-4o-mini"), t_local("tiny")};
    t[0].pin_model = "gpt-4o-2024-08-*";
    t[0].pin_fingerprint = "fp_44709d6fcb";
    t[1].pin_fingerprint = "fp_*";
    struct cfg_route routes[] = {t_route("r", m_star, 1, CFG_MODE_FALLBACK, t, N(t))};
    c.routes = routes;
    c.n_routes = 1;
    struct policy *p = t_policy(&c);
    const struct policy_route *r = policy_route_by_name(p, "r");
    int a = policy_target_id(r, 0), b = policy_target_id(r, 1), l = policy_target_id(r, 2);
    char why[256];

    /* no pins: anything matches, even nothing */
    CHECK_INT(policy_pin_check(p, l, NULL, NULL, 0, why, sizeof why), 0);
    CHECK_STR(why, "");
    CHECK_INT(policy_pin_check(p, l, "whatever", "fp_x", 0, why, sizeof why), 0);

    /* both pins hold */
    CHECK_INT(policy_pin_check(p, a, "gpt-4o-2024-08-06", "fp_44709d6fcb", 0, why, sizeof why), 0);
    CHECK_INT(policy_is_drifted(p, a), 0);
    /* the served model moved */
    CHECK_INT(policy_pin_check(p, a, "gpt-4o-2024-11-20", "fp_44709d6fcb", 1000, why, sizeof why), 1);
    CHECK_STR(why, "model \"gpt-4o-2024-11-20\" does not match pin \"gpt-4o-2024-08-*\"");
    CHECK_INT(policy_is_drifted(p, a), 1);
    /* model missing */
    CHECK_INT(policy_pin_check(p, a, NULL, "fp_44709d6fcb", 1500, why, sizeof why), 1);
    CHECK_STR(why, "model missing in the response, pinned \"gpt-4o-2024-08-*\"");
    /* fingerprint changed, missing, empty */
    CHECK_INT(policy_pin_check(p, a, "gpt-4o-2024-08-06", "fp_9b0", 2000, why, sizeof why), 1);
    CHECK_STR(why, "system_fingerprint \"fp_9b0\" does not match pin \"fp_44709d6fcb\"");
    CHECK_INT(policy_pin_check(p, a, "gpt-4o-2024-08-06", NULL, 2000, why, sizeof why), 1);
    CHECK_STR(why, "system_fingerprint missing in the response, pinned \"fp_44709d6fcb\"");
    CHECK_INT(policy_pin_check(p, a, "gpt-4o-2024-08-06", "", 2000, why, sizeof why), 1);
    CHECK_STR(why, "system_fingerprint missing in the response, pinned \"fp_44709d6fcb\"");
    /* the first mismatch dates the drift; later ones keep it */
    cJSON *j = policy_targets_json(p, 2000);
    const cJSON *o = cJSON_GetArrayItem(j, a);
    CHECK_INT(cJSON_GetObjectItem(o, "drifted_since_ms")->valueint, 1000);
    CHECK_STR(cJSON_GetObjectItem(o, "drift_reason")->valuestring,
              "system_fingerprint missing in the response, pinned \"fp_44709d6fcb\"");
    CHECK_STR(cJSON_GetObjectItem(o, "pin_model")->valuestring, "gpt-4o-2024-08-*");
    cJSON_Delete(j);

    /* probes: one per minute from the mark */
    CHECK_INT(policy_drift_probe_due(p, a, 60999), 0);
    CHECK_INT(policy_drift_probe_due(p, a, 61000), 1);
    CHECK_INT(policy_drift_probe_due(p, a, 61000), 0);
    CHECK_INT(policy_drift_probe_due(p, a, 120999), 0);
    CHECK_INT(policy_drift_probe_due(p, a, 121000), 1);
    CHECK_INT(policy_drift_probe_due(p, b, 121000), 0);    /* not drifted */
    /* the probe came back matching: drift cleared */
    CHECK_INT(policy_pin_check(p, a, "gpt-4o-2024-08-06", "fp_44709d6fcb", 121500, why, sizeof why), 0);
    CHECK_INT(policy_is_drifted(p, a), 0);
    CHECK_INT(policy_drift_probe_due(p, a, 999999), 0);
    j = policy_targets_json(p, 2000);
    o = cJSON_GetArrayItem(j, a);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(o, "drifted")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "drifted_since_ms")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "drift_reason")));
    cJSON_Delete(j);

    /* fingerprint glob; model unpinned */
    CHECK_INT(policy_pin_check(p, b, "anything", "fp_123", 0, why, sizeof why), 0);
    CHECK_INT(policy_pin_check(p, b, NULL, "fp_", 0, why, sizeof why), 0);
    CHECK_INT(policy_pin_check(p, b, "x", "vllm-0.21.0-tp2", 0, NULL, 0), 1);   /* why may be NULL */
    CHECK_INT(policy_is_drifted(p, b), 1);
    CHECK_INT(policy_pin_check(p, b, "x", "fp_1", 0, NULL, 0), 0);
    CHECK_INT(policy_is_drifted(p, b), 0);

    /* small why buffers are truncated, not overrun */
    char tiny[8];
    CHECK_INT(policy_pin_check(p, a, "zzz", "fp_44709d6fcb", 0, tiny, sizeof tiny), 1);
    CHECK_STR(tiny, "model \"");

    /* manual marks */
    policy_set_drifted(p, b, 1, 5000);
    CHECK_INT(policy_is_drifted(p, b), 1);
    CHECK_INT(policy_drift_probe_due(p, b, 64999), 0);
    CHECK_INT(policy_drift_probe_due(p, b, 65000), 1);
    policy_set_drifted(p, b, 0, 70000);
    CHECK_INT(policy_is_drifted(p, b), 0);

    /* bad ids */
    CHECK_INT(policy_pin_check(p, -1, "m", "f", 0, why, sizeof why), -1);
    CHECK_INT(policy_pin_check(p, 3, "m", "f", 0, why, sizeof why), -1);
    CHECK_INT(policy_is_drifted(p, 3), 0);
    CHECK_INT(policy_drift_probe_due(p, 3, 0), 0);
    policy_set_drifted(p, 3, 1, 0);
    policy_free(p);
    DONE();
}
