"""A tenant's credential revision: it moves whenever anything an API key's check reads
changes, so API servers can trust their key cache until it moves.

Revision ID: 0010
Revises: 0009

A key's check reads its own row (scopes, expiry, revocation, owner), its owner's
membership (role, status) and its tenant (status, plan, limits). Triggers bump
``tenants.credential_revision`` whenever one of those changes, in the transaction that
changes it, so no code path can forget to. ``fulcrum_credential_revisions(ids)`` reads the
revisions of many tenants at once (the API's role reads no tenant row but its
transaction's own): each API server polls the tenants of the keys it holds and drops a
tenant's keys when its revision moved (src/fulcrum/authn/authenticator.py).

``last_used_at`` is not part of a check: writing it moves nothing.
"""

from alembic import op

from fulcrum.kit.config import API_ROLE

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TENANT_COLUMNS = (
    "status",
    "plan",
    "rate_limit_per_second",
    "rate_limit_burst",
    "key_rate_limit_per_second",
    "key_rate_limit_burst",
    "limit_per_second",
    "limit_burst",
    "key_limit_per_second",
    "key_limit_burst",
)
_KEY_COLUMNS = "scopes, expires_at, revoked_at, service, owner_member_id"
_MEMBER_COLUMNS = "role, status"


def upgrade() -> None:
    op.execute("ALTER TABLE tenants ADD COLUMN credential_revision bigint NOT NULL DEFAULT 0")
    new = ", ".join(f"NEW.{c}" for c in _TENANT_COLUMNS)
    old = ", ".join(f"OLD.{c}" for c in _TENANT_COLUMNS)
    op.execute(
        f"""
        CREATE FUNCTION fulcrum_tenant_credentials_changed() RETURNS trigger
        LANGUAGE plpgsql SET search_path = public AS $$
        BEGIN
            -- Only ever one step forward: whatever value an UPDATE asks for (the key and
            -- member triggers ask for +1), so no transaction can move it back to hide a
            -- change from the servers' poll.
            IF ({new}) IS DISTINCT FROM ({old})
               OR NEW.credential_revision IS DISTINCT FROM OLD.credential_revision THEN
                NEW.credential_revision := OLD.credential_revision + 1;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER credentials_changed BEFORE UPDATE ON tenants
            FOR EACH ROW EXECUTE FUNCTION fulcrum_tenant_credentials_changed();

        -- Runs in the transaction of the change, whose role may update its own tenant's row
        -- (or any, in a platform transaction).
        CREATE FUNCTION fulcrum_bump_credential_revision() RETURNS trigger
        LANGUAGE plpgsql SET search_path = public AS $$
        BEGIN
            UPDATE tenants SET credential_revision = credential_revision + 1
            WHERE id = OLD.tenant_id;
            RETURN NULL;
        END $$;
        CREATE TRIGGER credentials_changed AFTER UPDATE OF {_KEY_COLUMNS} OR DELETE ON api_keys
            FOR EACH ROW EXECUTE FUNCTION fulcrum_bump_credential_revision();
        CREATE TRIGGER credentials_changed AFTER UPDATE OF {_MEMBER_COLUMNS} OR DELETE
            ON members FOR EACH ROW EXECUTE FUNCTION fulcrum_bump_credential_revision();

        CREATE FUNCTION fulcrum_credential_revisions(ids uuid[])
        RETURNS TABLE (tenant_id uuid, revision bigint)
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
        BEGIN
            PERFORM set_config('fulcrum.maintenance', 'on', true);
            RETURN QUERY SELECT t.id, t.credential_revision FROM tenants t WHERE t.id = ANY(ids);
            PERFORM set_config('fulcrum.maintenance', '', true);
        END $$;
        REVOKE ALL ON FUNCTION fulcrum_credential_revisions(uuid[]) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION fulcrum_credential_revisions(uuid[]) TO {API_ROLE};
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION fulcrum_credential_revisions(uuid[]);
        DROP TRIGGER credentials_changed ON members;
        DROP TRIGGER credentials_changed ON api_keys;
        DROP FUNCTION fulcrum_bump_credential_revision();
        DROP TRIGGER credentials_changed ON tenants;
        DROP FUNCTION fulcrum_tenant_credentials_changed();
        ALTER TABLE tenants DROP COLUMN credential_revision;
        """
    )
