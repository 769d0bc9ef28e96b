"""One APIRouter per resource."""
from fimg_service.http.routers import admin, banks, galleries, hashing, hma, jobs, meta, uploads

ROUTERS = (meta.router, admin.router, uploads.router, banks.router, jobs.router, hashing.router, galleries.router,
           hma.router)
