"""On-premises POS pulls: Profitek and Auphan store servers reached at a custom IP:PORT or a hosted endpoint."""
