from fastapi import APIRouter

# Sign-in, tokens and the users API arrive with the identity issue.
router = APIRouter(prefix="/api/v1", tags=["identity"])
