-- 0003_api_key_names: an API key's name is unique among the active keys of its project
-- (reference §3.3: 409 "API key with name '<name>' already exists for this project"). The
-- application checks first; this index settles concurrent creations. Revoked keys keep their
-- names and do not block reusing them.
CREATE UNIQUE INDEX idx_api_keys_project_active_name ON api_keys (project_id, name) WHERE status = 'active';
